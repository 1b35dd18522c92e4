from quantlab.catalog._core import Catalog, DatasetRef, Lineage, VersionInfo, fingerprint

__all__ = ["Catalog", "DatasetRef", "Lineage", "VersionInfo", "fingerprint"]
