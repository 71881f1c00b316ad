/*
 * presbridge - SIP/SIMPLE <-> XMPP presence and IM federation bridge.
 *
 * Command line (a contract: extended, never renamed):
 *   presbridge -c FILE        run in the foreground, logging to stderr
 *   presbridge -c FILE -n     check config, mappings and certificates offline
 *   presbridge -c FILE --probe [--json]
 *                             also connect to every peer and the XMPP server
 *   presbridge -V             version
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/conf.h"
#include "presbridge/daemon.h"
#include "presbridge/probe.h"
#include "presbridge/siptls.h"
#include "presbridge/xs2s.h"
#include "presbridge/version.h"

enum {
	EXIT_USAGE = 2,
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: presbridge -c FILE [-n | --probe [--json]]\n"
	    "       presbridge -V\n"
	    "\n"
	    "  -c, --config FILE  configuration file (INI)\n"
	    "  -n, --check        check configuration, mappings and certificates, then "
	    "exit:\n"
	    "                     prints 'configuration OK' (exit 0) or every problem "
	    "as\n"
	    "                     file:line (exit 1)\n"
	    "      --probe        the checks of -n, then connect to every [peer] and "
	    "the\n"
	    "                     XMPP server and report per target what would stop\n"
	    "                     federation (exit 0 only if it would work)\n"
	    "      --json         with --probe: one JSON document for tools\n"
	    "  -V, --version      print the version and exit\n"
	    "  -h, --help         this text\n");
}

/* Print every problem, errors and warnings alike, in file order of discovery. */
static void print_diags(const struct diag_list *dl, FILE *f)
{
	char line[1400];
	for (size_t i = 0; i < dl->n; i++) {
		diag_format(&dl->v[i], line, sizeof(line));
		fprintf(f, "%s\n", line);
	}
	if (dl->oom)
		fprintf(f, "error: out of memory while recording problems; some are not "
		           "shown\n");
}

static int check(const char *path)
{
	struct diag_list dl;
	struct conf *cf = NULL;

	diag_init(&dl);
	int err = conf_load(&cf, path, &dl);
	/* Certificates are checked once the configuration itself is sound: their
	 * paths and roles come from it. */
	if (!err) {
		err = siptls_check_conf(cf, &dl);
		int e2 = xs2s_check_conf(cf, &dl);
		if (!err)
			err = e2;
	}
	print_diags(&dl, stdout);
	if (!err)
		printf("configuration OK\n");
	else if (diag_count(&dl, DIAG_ERROR) == 0)
		printf("error: %s\n", strerror(-err));
	diag_free(&dl);
	conf_free(cf);
	return err ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'n'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {"probe", no_argument, NULL, 'P'},
	    {"json", no_argument, NULL, 'J'},
	    {NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	int check_only = 0, probe = 0, json = 0;
	int c;

	while ((c = getopt_long(argc, argv, "c:nVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'P':
			probe = 1;
			break;
		case 'J':
			json = 1;
			break;
		case 'V':
			printf("presbridge %s\n", PB_VERSION);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "presbridge: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!config) {
		fprintf(stderr, "presbridge: -c FILE is required\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (json && !probe) {
		fprintf(stderr, "presbridge: --json goes with --probe\n");
		return EXIT_USAGE;
	}
	if (check_only && probe) {
		fprintf(stderr, "presbridge: -n and --probe exclude each other (--probe "
		                "includes the checks of -n)\n");
		return EXIT_USAGE;
	}
	if (check_only)
		return check(config);
	if (probe)
		return probe_run(config, json, stdout);

	return daemon_run(config);
}
