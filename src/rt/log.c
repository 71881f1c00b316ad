#include "presbridge/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level current = LOG_LVL_INFO;
static bool journal;

/* syslog(3) priorities of the levels: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const int priorities[] = {3, 4, 6, 7, 7};

static const char *const names[] = {"error", "warn", "info", "debug", "trace"};

void log_set_level(enum log_level level)
{
	current = level;
}

enum log_level log_get_level(void)
{
	return current;
}

bool log_journal_detect(void)
{
	/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected to
	 * the journal (systemd.exec(5)); stderr may since have been redirected. */
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	char tail;
	journal = js && sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) == 2 &&
	          fstat(STDERR_FILENO, &st) == 0 &&
	          (unsigned long long)st.st_dev == dev &&
	          (unsigned long long)st.st_ino == ino;
	return journal;
}

bool log_enabled(enum log_level level)
{
	return level <= current;
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
	char msg[4096], stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A peer's text can hold line breaks; one event stays one line. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (journal) {
		/* The journal stamps the line itself and reads the priority from
		 * the "<N>" prefix (sd-daemon(3)), so journalctl -p filters it. */
		fprintf(stderr, "<%d>%-5s %s: %s\n", priorities[level], names[level],
		        module, msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", stamp, ts.tv_nsec / 1000000L,
	        names[level], module, msg);
}
