from kit.migrations import run_env
from services.records.models import RecordsModel

run_env(RecordsModel.metadata)
