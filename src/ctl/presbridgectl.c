/*
 * presbridgectl - ask the running presbridge what it is doing, or tell it to
 * reload, change its log level or stop, over its control socket (ctl.h).
 *
 *   presbridgectl [-s SOCKET] [--json] COMMAND [ARGS]
 *
 * Exit status: 0 done; 1 the daemon refused or the command failed; 2 usage;
 * 3 no daemon answers at the socket.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "presbridge/conf.h"
#include "presbridge/ctl.h"
#include "presbridge/version.h"

enum { EX_OK = 0, EX_FAILED = 1, EX_USAGE = 2, EX_NODAEMON = 3 };

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: presbridgectl [-s SOCKET] [--json] COMMAND [ARGS]\n"
	    "\n"
	    "  status                      version, uptime, links and peers, counts\n"
	    "  peers                       every link and peer: up or down, since when,\n"
	    "                              last failure\n"
	    "  subscriptions [USER|DOMAIN] bridged subscriptions (all, or of one user\n"
	    "                              or domain)\n"
	    "  sessions                    IM sessions\n"
	    "  reload                      reload the configuration and mappings (as\n"
	    "                              SIGHUP); says what changed or why refused\n"
	    "  log-level LEVEL             error|warn|info|debug|trace until the next\n"
	    "                              reload\n"
	    "  stop                        stop gracefully (as SIGTERM)\n"
	    "\n"
	    "  -s, --socket PATH  the daemon's control socket (default: "
	    "$PRESBRIDGE_CONTROL,\n"
	    "                     else %s)\n"
	    "  -j, --json         JSON for tools\n"
	    "  -V, --version      print the version\n"
	    "\n"
	    "exit status: 0 done, 1 refused or failed, 2 usage, 3 no daemon answers\n",
	    CONF_CONTROL_SOCKET_DEFAULT);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *path = getenv("PRESBRIDGE_CONTROL");
	int json = 0, c;
	if (!path || !*path)
		path = CONF_CONTROL_SOCKET_DEFAULT;
	while ((c = getopt_long(argc, argv, "+s:jVh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'V':
			printf("presbridgectl %s\n", PB_VERSION);
			return EX_OK;
		case 'h':
			usage(stdout);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	char line[CTL_LINE_MAX];
	size_t len = (size_t)snprintf(line, sizeof(line), "%s", json ? "--json" : "");
	for (int i = optind; i < argc; i++) {
		if (strpbrk(argv[i], " \t\r\n") || !*argv[i]) {
			fprintf(stderr,
			        "presbridgectl: arguments cannot hold blanks: '%s'\n",
			        argv[i]);
			return EX_USAGE;
		}
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s",
		                        len ? " " : "", argv[i]);
		if (len + 2 >= sizeof(line)) {
			fprintf(stderr, "presbridgectl: command too long\n");
			return EX_USAGE;
		}
	}
	line[len++] = '\n';

	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "presbridgectl: socket path too long: %s\n", path);
		return EX_USAGE;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		fprintf(
		    stderr, "presbridgectl: no presbridge answers at %s: %s%s\n", path,
		    strerror(e),
		    e == ENOENT   ? " (is it running? is [control] socket set elsewhere?)"
		    : e == EACCES ? " (run as root or as a member of group presbridge)"
		    : e == ECONNREFUSED ? " (a stale socket: the daemon is not running)"
		                        : "");
		if (fd >= 0)
			close(fd);
		return EX_NODAEMON;
	}
	struct timeval tv = {.tv_sec = 15};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len) {
		fprintf(stderr, "presbridgectl: cannot send to %s: %s\n", path,
		        strerror(errno));
		close(fd);
		return EX_NODAEMON;
	}
	/* The first line is the exit status; the rest goes to stdout (stderr when
	 * the command failed). */
	char buf[65536];
	int status = -1;
	char head[8];
	size_t hl = 0;
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		size_t off = 0;
		while (status < 0 && off < (size_t)n) {
			char ch = buf[off++];
			if (ch == '\n') {
				head[hl] = '\0';
				status = atoi(head);
				if (status < 0 || status > 2)
					status = EX_FAILED;
			} else if (hl + 1 < sizeof(head)) {
				head[hl++] = ch;
			}
		}
		if (status >= 0 && off < (size_t)n)
			fwrite(buf + off, 1, (size_t)n - off,
			       status == 0 ? stdout : stderr);
	}
	int rerr = n < 0 ? errno : 0;
	close(fd);
	if (status < 0) {
		fprintf(stderr, "presbridgectl: no answer from %s%s%s\n", path,
		        rerr ? ": " : " (the daemon closed the connection)",
		        rerr ? strerror(rerr) : "");
		return EX_NODAEMON;
	}
	return status;
}
