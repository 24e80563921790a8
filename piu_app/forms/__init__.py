"""WTForms classes: they check the shape of what a user typed; the services check the rules."""
