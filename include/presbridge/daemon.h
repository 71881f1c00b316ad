/*
 * daemon - the running bridge: configuration, the event loop, signals, and the
 * legs it drives. `presbridge -c FILE` calls daemon_run().
 *
 * SIGTERM/SIGINT stop gracefully; SIGHUP reloads the configuration and mapping
 * files, keeping the running ones if the new ones have any error.
 */
#ifndef PRESBRIDGE_DAEMON_H
#define PRESBRIDGE_DAEMON_H

/* Run until stopped. Returns the process exit status. */
int daemon_run(const char *config_path);

#endif
