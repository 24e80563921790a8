"""Everything that crosses the city's border: bundles to and from peers, spreadsheets in and out.

`bundle_format` describes the exchange bundle (tables, schemas, rules); `bundle_export` writes
one, `bundle_import` reads, checks, previews, applies and undoes one; `spreadsheets` reads the
files cities already keep and writes list pages as CSV/XLSX; `cells` keeps spreadsheet cells
from running as formulas.
"""
