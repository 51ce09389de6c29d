from kit.migrations import run_env
from services.identity.models import IdentityModel

run_env(IdentityModel.metadata)
