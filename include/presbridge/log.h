/*
 * log - one line per event on stderr: time, level, module, message. When
 * stderr is the systemd journal (log_journal_detect), each line starts with its
 * syslog priority ("<3>" error, "<4>" warn, "<6>" info, "<7>" debug and trace)
 * instead of the time, so `journalctl -p warning` filters it.
 *
 * Messages name the module, the peer and the cause in plain words
 * ("sip: peer lync01.sip.test: certificate has no clientAuth EKU; ..."). Secrets
 * are never passed in: callers mask them first.
 */
#ifndef PRESBRIDGE_LOG_H
#define PRESBRIDGE_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
	LOG_LVL_TRACE,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);
/* Write for the journal when JOURNAL_STREAM names stderr; returns whether so. */
bool log_journal_detect(void);

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(mod, ...) log_msg(LOG_LVL_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_msg(LOG_LVL_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...)  log_msg(LOG_LVL_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...)                                                              \
	do {                                                                             \
		if (log_enabled(LOG_LVL_DEBUG))                                          \
			log_msg(LOG_LVL_DEBUG, mod, __VA_ARGS__);                        \
	} while (0)
#define log_trace(mod, ...)                                                              \
	do {                                                                             \
		if (log_enabled(LOG_LVL_TRACE))                                          \
			log_msg(LOG_LVL_TRACE, mod, __VA_ARGS__);                        \
	} while (0)

#endif
