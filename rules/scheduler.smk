# Snakemake's scheduling loop, kept from eating a core: one pending re-evaluation timer at a time.
#
# With a job rate limit (Snakemake's default --max-jobs-per-timespan 100/1s), every scheduling round ends by starting
# a timer that triggers another round after the timespan. Rounds also start whenever a job ends, so each job's end
# starts a new chain of timers that never stops: with N jobs done, N rounds a second, each re-evaluating the waiting
# jobs' params and stat-ing their inputs. In the default experiment Snakemake's CPU grew from 18 % of a core (average
# over the first hour) to 40 % once 84 of its 274 jobs were done, on a 2-core machine (upstream:
# snakemake/snakemake#3744). One pending timer is enough (any round re-checks every job), and a daemon timer does not
# keep a finished run alive for the timespan. benchmarks/scheduler_overhead.py measures the difference.
import threading

from snakemake.scheduling.job_scheduler import JobScheduler


def _schedule_reevaluation_once(self, delay):
    """Start a timer for the next scheduling round unless one is already pending."""
    pending = getattr(self, "_pending_reevaluation", None)
    if pending is not None and pending.is_alive():
        return
    self._pending_reevaluation = threading.Timer(delay, self._open_jobs.release)
    self._pending_reevaluation.daemon = True
    self._pending_reevaluation.start()


if hasattr(JobScheduler, "_schedule_reevalutation"):  # the name (sic) of Snakemake 8.20-9.x; else nothing to fix
    JobScheduler._schedule_reevalutation = _schedule_reevaluation_once
