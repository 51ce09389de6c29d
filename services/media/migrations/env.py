from kit.migrations import run_env
from services.media.models import MediaModel

run_env(MediaModel.metadata)
