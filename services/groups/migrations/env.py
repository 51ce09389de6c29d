from kit.migrations import run_env
from services.groups.models import GroupsModel

run_env(GroupsModel.metadata)
