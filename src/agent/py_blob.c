/* agent/py_blob.c -- the sandbox-side programs of the agent (src/agent/py/), compiled into
 * corral-ext.so; the agent concatenates them into one cell (docs/OFFLINE_ANALYST.md). */
#define BLOB(sym, path)                                      \
	__asm__(".section .rodata\n"                         \
		".global " #sym "\n"                         \
		".type " #sym ", @object\n"                  \
		".balign 16\n" #sym ":\n"                    \
		".incbin \"" path "\"\n"                     \
		".byte 0\n"                                  \
		".previous\n")
BLOB(agent_py_dataset, "src/agent/py/dataset.py");
BLOB(agent_py_trends, "src/agent/py/trends.py");
BLOB(agent_py_charts, "src/agent/py/charts.py");
BLOB(agent_py_profile, "src/agent/py/profile.py");
BLOB(agent_py_offline, "src/agent/py/offline_analyst.py");
