#include "presbridge/xtls.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "presbridge/addr.h"
#include "presbridge/xproto.h"

__attribute__((format(printf, 3, 4))) static void say(char *why, size_t n,
                                                      const char *fmt, ...)
{
	va_list ap;
	if (!why || !n)
		return;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
}

int xtls_check_peer(const char *cert_pem, const char *cafile, const char *name, char *why,
                    size_t n)
{
	X509 *cert = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *sctx = NULL;
	BIO *bio = NULL;
	int err = -EINVAL;

	say(why, n, "%s", "");
	if (!cert_pem || !cafile || !name) {
		say(why, n, "no certificate, [xmpp] ca or name to check");
		return -EINVAL;
	}
	bio = BIO_new_mem_buf(cert_pem, -1);
	cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (!cert) {
		say(why, n, "the server's certificate could not be read");
		goto out;
	}
	store = X509_STORE_new();
	sctx = X509_STORE_CTX_new();
	if (!store || !sctx) {
		err = -ENOMEM;
		goto out;
	}
	if (X509_STORE_load_file(store, cafile) != 1) {
		say(why, n, "cannot read [xmpp] ca %s", cafile);
		err = -ENOENT;
		goto out;
	}
	if (X509_STORE_CTX_init(sctx, store, cert, NULL) != 1) {
		err = -ENOMEM;
		goto out;
	}
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(sctx);
	X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	int set = addr_is_ip(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
	                           : X509_VERIFY_PARAM_set1_host(param, name, 0);
	if (set != 1) {
		say(why, n, "[xmpp] name '%s' is not a usable DNS name or address", name);
		goto out;
	}
	if (X509_verify_cert(sctx) == 1) {
		err = 0;
		goto out;
	}
	int code = X509_STORE_CTX_get_error(sctx);
	const struct xproto_certerr *ce = xproto_cert_error(code);
	say(why, n, "%s for %s (OpenSSL: %s); %s", ce->words, name,
	    X509_verify_cert_error_string(code), ce->fix);
	err = -EACCES;
out:
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	X509_free(cert);
	BIO_free(bio);
	return err;
}

/* --- the TLS handshake watchdog --------------------------------------------- */

static volatile sig_atomic_t wd_fd = -1;
static volatile sig_atomic_t wd_fired;
static timer_t wd_timer;
static bool wd_ready;
static struct sigaction wd_old;

static void wd_alarm(int signo)
{
	(void)signo;
	int fd = wd_fd;
	if (fd >= 0) {
		/* shutdown() is async-signal-safe; libstrophe's next read sees EOF and
		 * its handshake loop ends with an error. */
		shutdown(fd, SHUT_RDWR);
		wd_fired = 1;
	}
}

int xtls_watchdog_init(void)
{
	struct sigaction sa;
	struct sigevent sev;

	if (wd_ready)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wd_alarm;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, &wd_old) != 0)
		return -errno;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGALRM;
	if (timer_create(CLOCK_MONOTONIC, &sev, &wd_timer) != 0) {
		int e = -errno;
		sigaction(SIGALRM, &wd_old, NULL);
		return e;
	}
	wd_ready = true;
	return 0;
}

void xtls_watchdog_fini(void)
{
	if (!wd_ready)
		return;
	timer_delete(wd_timer);
	sigaction(SIGALRM, &wd_old, NULL);
	wd_ready = false;
}

void xtls_watchdog_arm(int fd, unsigned ms)
{
	struct itimerspec its;

	wd_fired = 0;
	wd_fd = fd;
	if (!wd_ready)
		return;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	timer_settime(wd_timer, 0, &its, NULL);
}

bool xtls_watchdog_disarm(void)
{
	struct itimerspec its;

	if (wd_ready) {
		memset(&its, 0, sizeof(its));
		timer_settime(wd_timer, 0, &its, NULL);
	}
	wd_fd = -1;
	return wd_fired != 0;
}
