"""Datasets out: a selection of recordings, or My files' current filter, leaves as a dataset the toolkits
read directly, in one of three layouts (rPPG-Toolbox / UBFC-rPPG, BIDS-style, Plain), with SHA256SUMS
and a README; delivered as a zip streamed from the bucket, or as a manifest with a fetch script.

- :mod:`.model`: the values (layout, selection, the plan of every file);
- :mod:`.naming`: where each recording goes in a layout, refusing names that collide;
- :mod:`.truth`: stored ground truth written in a layout's format;
- :mod:`.documents`: README, SHA256SUMS, mapping and the layouts' index files;
- :mod:`.plan`: building the plan, with every refusal before a byte is sent;
- :mod:`.archive`: the streamed zip; :mod:`.manifest` and :mod:`.fetch`: the manifest and its script;
- :mod:`.tickets` and :mod:`.routes`: the one-time link and the app route that streams it;
- :mod:`.prepare`: what My files' Export calls.
"""

from lib.export.model import LAYOUT_LABELS, Delivery, ExportPlan, Layout, Selection
from lib.export.prepare import PreparedExport, prepare_export
from lib.export.routes import ExportBackends, export_routes
from lib.export.tickets import ExportTickets

__all__ = ["LAYOUT_LABELS", "Delivery", "ExportBackends", "ExportPlan", "ExportTickets", "Layout", "PreparedExport",
           "Selection", "export_routes", "prepare_export"]
