"""Runs a command and prints, on standard error, `__time USER SYS MAXRSS_KB`: its CPU
seconds (user, system) to the microsecond and its peak resident set, from the kernel's
accounting of the child (wait4), as GNU time's `%U %S %M` would with its 10 ms steps.
The command's standard output and error pass through."""
import os
import subprocess
import sys

child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write("__time %.6f %.6f %d\n" % (usage.ru_utime, usage.ru_stime, usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
