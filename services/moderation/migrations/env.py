from kit.migrations import run_env
from services.moderation.models import ModerationModel

run_env(ModerationModel.metadata)
