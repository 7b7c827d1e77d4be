"""Signed inventory import (DESIGN §7): the ONE code path behind the management command,
the admin wizard, the REST endpoint and the Celery task.

1. ``import_create`` (storage) streams the CSV and its detached signature to
   INVENTORY_IMPORT_DIR, hashing and counting lines on the way → InventoryImport PENDING.
2. ``run_import`` (run; any process, any number of times):
   a. verifies the signature over the exact stored bytes with a currently valid key of the
      issuer — before a single byte is parsed (signature);
   b. validates every row while streaming the file (rows), copying the results in batches
      into a session temp table (staging; memory stays bounded by the batch, not the file);
   c. marks duplicates inside the file and against the inventory with SQL (staging);
   d. commits in ONE transaction in the chosen mode: blocks, numbers (numbering.inventory),
      the import record with its per-row report, an audit event and the outbox event
      ``numbering.import.completed.v1``. All-or-nothing refuses when any row is bad;
      valid-rows imports exactly the good ones. A file already committed is a no-op.

Whether a run happens now or in the Celery worker is contracts.services.import_dispatch.
The CSV format is specified in docs/import-csv-format.md.
"""

from __future__ import annotations

from contracts.imports.outcome import ImportOutcome
from contracts.imports.run import EVENT_COMPLETED, IMPORT_RESULTS, import_file, run_import
from contracts.imports.signature import verify_signature
from contracts.imports.storage import csv_path, import_create, import_set_mode, signature_path

__all__ = [
    "EVENT_COMPLETED",
    "IMPORT_RESULTS",
    "ImportOutcome",
    "csv_path",
    "import_create",
    "import_file",
    "import_set_mode",
    "run_import",
    "signature_path",
    "verify_signature",
]
