/* tests/probes/idprobe.c -- prints the ids and capabilities the process really has.
 * Installed setuid-root by the abuse test: inside the sandbox it must gain nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	uid_t r, e, s;
	getresuid(&r, &e, &s);
	printf("ruid=%u euid=%u suid=%u\n", r, e, s);
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) ||
		    !strncmp(line, "Seccomp", 7))
			fputs(line, stdout);
	if (f)
		fclose(f);
	return 0;
}
