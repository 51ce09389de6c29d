from kit.migrations import run_env
from services.feed.models import FeedModel

run_env(FeedModel.metadata)
