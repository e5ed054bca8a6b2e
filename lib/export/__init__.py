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
- :mod:`.prepare`: what the Export dialog (My files, Studies) calls, with the export's audit entries.
"""

from lib.lazy import lazy_exports

_EXPORTS = {  # name -> its module; each loads on first use (lib.lazy), so importing the package stays cheap
    "LAYOUT_LABELS": "model",
    "Delivery": "model",
    "ExportPlan": "model",
    "ExportRequest": "model",
    "Layout": "model",
    "Selection": "model",
    "PreparedExport": "prepare",
    "prepare_export": "prepare",
    "ExportBackends": "routes",
    "export_routes": "routes",
    "ExportTickets": "tickets",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
