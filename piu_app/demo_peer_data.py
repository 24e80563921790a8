"""A fictional peer city, Dune-Blanche (Sénégal), whose bundle `piu demo` builds and imports.

It shows what "Qui l'a essayé ailleurs ?" does on a first run: Dune-Blanche tried the demonstration's
own "Éclairage public solaire intelligent" (a record it relays back, marked `"home": True`: its uid is
the one the demonstration gave it), and its own innovations close to three of the demonstration's
(solar street lights, solar fish dryers, door-to-door waste collection) — one of them in a place it
did not describe, so that the page shows how a peer without a territory is ranked.
References are by name, like `demo_data`; a reference to a `"home"` record points to the demonstration.
"""

from __future__ import annotations

CITY = {"name": "Commune de Dune-Blanche", "country_code": "SN", "instance_code": "dune-blanche"}

TERRITORIES = [
    {
        "name": "Dune-Blanche",
        "level": "commune",
        "country_code": "SN",
        "population": 64500,
        "population_year": 2023,
        "density_fr": 3,
        "degurba_l1": 2,
        "features": ["littoral"],
        "lat": 14.512,
        "lon": -17.051,
        "visibility": "public",
    },
]

ORGANISATIONS = [
    {
        "name": "Commune de Dune-Blanche",
        "org_type": "commune",
        "actor_family": "buyer",
        "territory": "Dune-Blanche",
        "description_short": "Commune littorale de 64 500 habitants, tournée vers la pêche artisanale.",
        "visibility": "public",
    },
    {
        "name": "Soleil des Dunes",
        "org_type": "startup",
        "actor_family": "carrier",
        "territory": "Dune-Blanche",
        "description_short": "Jeune entreprise qui pose et entretient des équipements solaires pour les communes.",
        "is_startup": True,
        "visibility": "public",
    },
]

PERSONS = [
    {
        "given_name": "Aminata",
        "family_name": "Faye",
        "job_title": "Chargée de mission énergie",
        "organisation": "Commune de Dune-Blanche",
        "role_kind": "agent",
        "email": "aminata.faye@dune-blanche.example",
        "phone": "+221 33 957 12 40",
        "contact_consent": True,
        "consent_date": "2024-02-01",
        "consent_scope": "Partage avec le réseau des villes",
        "visibility": "public",
    },
]

INNOVATIONS = [
    {
        # The demonstration city's own record, relayed back by Dune-Blanche: never replaced by the import.
        "name": "Éclairage public solaire intelligent",
        "home": True,
        "tagline": "Lampadaires autonomes à énergie solaire, pilotés à distance, qui baissent l'intensité quand la rue est vide.",
        "innovation_kind": "product_service",
        "themes": ["energy_climate", "safety_resilience", "planning_public_space"],
        "visibility": "public",
    },
    {
        "name": "Lampadaires solaires à détection de présence",
        "tagline": "Des lampadaires autonomes qui s'allument quand un piéton passe, sans raccordement au réseau.",
        "description": "Chaque mât porte un panneau solaire, une batterie et un détecteur infrarouge. La lumière reste "
                       "à 20 % et monte à pleine puissance au passage d'un piéton ou d'une charrette.",
        "innovation_kind": "product_service",
        "themes": ["energy_climate", "safety_resilience"],
        "deployment_stage": "pilot",
        "carriers": [["Soleil des Dunes", "carrier"]],
        "visibility": "public",
    },
    {
        "name": "Claies de séchage solaire du poisson",
        "tagline": "Des séchoirs solaires couverts qui protègent le poisson des mouches et du sable.",
        "innovation_kind": "product_service",
        "themes": ["energy_climate", "economy_jobs"],
        "deployment_stage": "pilot",
        "visibility": "public",
    },
    {
        "name": "Pré-collecte des déchets par charrettes",
        "tagline": "Collecte des déchets en porte-à-porte par charrettes dans les quartiers de sable.",
        "innovation_kind": "organisational",
        "themes": ["waste_circular", "economy_jobs"],
        "deployment_stage": "early_deployment",
        "visibility": "public",
    },
]

EXPERIMENTS = [
    {
        "title": "Éclairage solaire de la corniche de Dune-Blanche",
        "innovation": "Éclairage public solaire intelligent",
        "buyer": "Commune de Dune-Blanche",
        "territory": "Dune-Blanche",
        "start_date": "2023-09-01",
        "end_date": "2024-06-30",
        "status": "completed",
        "outcome": "generalised",
        "budget_total": 31000000,
        "currency": "XOF",
        "visibility": "public",
    },
    {
        "title": "Lampadaires à détection au quartier des pêcheurs",
        "innovation": "Lampadaires solaires à détection de présence",
        "buyer": "Commune de Dune-Blanche",
        "territory": "Dune-Blanche",
        "start_date": "2024-02-15",
        "status": "ongoing",
        "visibility": "public",
    },
    {
        # No territory: the city did not say where; the page ranks it by the innovation alone.
        "title": "Séchoirs solaires du quai de pêche",
        "innovation": "Claies de séchage solaire du poisson",
        "buyer": "Commune de Dune-Blanche",
        "start_date": "2023-04-01",
        "end_date": "2023-10-31",
        "status": "completed",
        "outcome": "extended",
        "visibility": "public",
    },
    {
        "title": "Charrettes de pré-collecte à Dune-Blanche",
        "innovation": "Pré-collecte des déchets par charrettes",
        "buyer": "Commune de Dune-Blanche",
        "territory": "Dune-Blanche",
        "start_date": "2022-11-01",
        "status": "ongoing",
        "visibility": "public",
    },
]

# Barriers Dune-Blanche's lessons cite: two of the demonstration's own catalogue (relayed back, marked
# "home"), and one of its own, so that « Freins les plus cités » shows a barrier cited in two cities.
BARRIERS = [
    {
        "label": "Aucun budget de fonctionnement prévu après l'expérimentation",
        "home": True,
        "actor_group": "buyers", "nature": "funding_business_model",
        "visibility": "public",
    },
    {
        "label": "Habitants non associés : rejet ou dégradation du dispositif",
        "home": True,
        "actor_group": "territory", "nature": "acceptability",
        "visibility": "public",
    },
    {
        "label": "Équipements inadaptés au climat littoral (sel, sable, chaleur)",
        "description": "Fixations corrodées par le sel, sable dans les mécanismes, batteries qui chauffent : les matériels conçus pour l'Europe s'usent vite sur la côte.",
        "actor_group": "carriers", "nature": "replicability",
        "themes": ["energy_climate"],
        "levers": "Exiger l'inox et un indice de protection IP66 au moins ; tester une saison sèche et un hivernage avant de généraliser.",
        "visibility": "public",
    },
]

LESSONS = [
    {
        "title": "Corniche éclairée : associer les pêcheurs au choix des emplacements",
        "barriers": ["Aucun budget de fonctionnement prévu après l'expérimentation",
                     "Habitants non associés : rejet ou dégradation du dispositif",
                     "Équipements inadaptés au climat littoral (sel, sable, chaleur)"],
        "experiment": "Éclairage solaire de la corniche de Dune-Blanche",
        "author": "Aminata Faye",
        "date": "2024-07-15",
        "what_worked": "Les emplacements choisis avec les pêcheurs et les mareyeuses ont évité toute dégradation.",
        "what_did_not": "Le sel a corrodé les premières fixations : il faut de l'inox sur le littoral.",
        "advice": "Prévoyez des fixations en inox et un contrat de maintenance dès l'achat.",
        "people": [["Aminata Faye", "author"]],
        "visibility": "public",
    },
]

REVIEWS = [
    {
        "innovation": "Éclairage public solaire intelligent",
        "experiment": "Éclairage solaire de la corniche de Dune-Blanche",
        "reviewer_person": "Aminata Faye",
        "reviewer_org": "Commune de Dune-Blanche",
        "reviewer_type": "peer_city",
        "overall_comment": "Fiable sur la corniche malgré le sel ; la télégestion rassure les élus.",
        "would_recommend": True,
        "date": "2024-07-20",
        "scores": {"benefit": 5, "maturity": 4, "total_cost": 3, "replicability": 4},
        "visibility": "public",
    },
]
