#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/state.h"

struct fx {
	struct store *store;
	struct state *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(store_open(&f->store, ":memory:", STORE_SYNC_NORMAL, NULL), 0);
	assert_int_equal(state_open(&f->s, f->store, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	state_free(f->s);
	store_close(f->store);
	free(f);
	return 0;
}

/* Reopen the table over the same store, as a restart would. */
static void restart(struct fx *f, size_t *skipped)
{
	state_free(f->s);
	assert_int_equal(state_open(&f->s, f->store, skipped), 0);
}

static struct state_sub *add(struct fx *f, enum sub_dir dir, const char *w, const char *p,
                             enum sub_phase phase)
{
	struct state_sub *sub;
	assert_int_equal(state_sub_add(f->s, dir, w, p, &sub), 0);
	sub->st.phase = phase;
	assert_int_equal(state_sub_save(f->s, sub), 0);
	return sub;
}

static void test_sub_indexes(void **state)
{
	struct fx *f = *state;
	struct state_sub *a = add(f, SUB_DIR_SIP_WATCHER, "sip:alice@sip.test",
	                          "bob@xmpp.test", SUB_SW_ACTIVE);
	struct state_sub *b = add(f, SUB_DIR_SIP_WATCHER, "sip:carol@sip.test",
	                          "bob@xmpp.test", SUB_SW_PENDING);
	struct state_sub *c = add(f, SUB_DIR_XMPP_WATCHER, "bob@xmpp.test",
	                          "sip:alice@sip.test", SUB_XW_ACTIVE);
	struct state_sub *dup;
	/* The same pair in the other direction is another subscription. */
	assert_int_equal(state_sub_add(f->s, SUB_DIR_SIP_WATCHER, "sip:alice@sip.test",
	                               "bob@xmpp.test", &dup),
	                 -EEXIST);
	assert_ptr_equal(state_sub_get(f->s, SUB_DIR_SIP_WATCHER, "sip:alice@sip.test",
	                               "bob@xmpp.test"),
	                 a);
	assert_null(state_sub_get(f->s, SUB_DIR_XMPP_WATCHER, "sip:alice@sip.test",
	                          "bob@xmpp.test"));
	size_t n;
	struct state_sub *const *v = state_subs_of(f->s, "bob@xmpp.test", &n);
	assert_int_equal(n, 2);
	assert_true((v[0] == a && v[1] == b) || (v[0] == b && v[1] == a));
	v = state_subs_of(f->s, "sip:alice@sip.test", &n);
	assert_int_equal(n, 1);
	assert_ptr_equal(v[0], c);
	assert_null(state_subs_of(f->s, "nobody@xmpp.test", &n));
	assert_int_equal(n, 0);
	/* A subscription to one device (RFC 7247 6.3: keyed by the full JID) is
	 * its own pair, and is found under the user's bare JID. */
	struct state_sub *d = add(f, SUB_DIR_SIP_WATCHER, "sip:alice@sip.test",
	                          "bob@xmpp.test/desk", SUB_SW_ACTIVE);
	assert_ptr_equal(state_sub_get(f->s, SUB_DIR_SIP_WATCHER, "sip:alice@sip.test",
	                               "bob@xmpp.test/desk"),
	                 d);
	v = state_subs_of(f->s, "bob@xmpp.test", &n);
	assert_int_equal(n, 3);
	assert_true(v[0] == d || v[1] == d || v[2] == d);
	assert_null(state_subs_of(f->s, "bob@xmpp.test/desk", &n));
	assert_int_equal(state_sub_drop(f->s, d), 0);
	v = state_subs_of(f->s, "bob@xmpp.test", &n);
	assert_int_equal(n, 2);
	/* Dialog index: set, look up, re-key when the remote tag arrives, clear. */
	assert_int_equal(state_sub_set_dialog(f->s, a, "call-1", "ltag", NULL), 0);
	assert_ptr_equal(state_sub_by_dialog(f->s, "call-1", "ltag"), a);
	assert_int_equal(state_sub_set_dialog(f->s, a, "call-1", "ltag", "rtag"), 0);
	assert_ptr_equal(state_sub_by_dialog(f->s, "call-1", "ltag"), a);
	assert_string_equal(a->remote_tag, "rtag");
	assert_int_equal(state_sub_set_dialog(f->s, b, "call-1", "ltag", NULL), -EEXIST);
	assert_int_equal(state_sub_set_dialog(f->s, a, NULL, NULL, NULL), 0);
	assert_null(state_sub_by_dialog(f->s, "call-1", "ltag"));
	assert_null(a->call_id);
	/* Dropping from the middle of a fan-out list keeps the others reachable. */
	assert_int_equal(state_sub_drop(f->s, a), 0);
	v = state_subs_of(f->s, "bob@xmpp.test", &n);
	assert_int_equal(n, 1);
	assert_ptr_equal(v[0], b);
	assert_int_equal(state_sub_count(f->s), 2);
	assert_int_equal(state_sub_count_of_watcher(f->s, "sip:alice@sip.test"), 0);
	assert_int_equal(state_sub_count_of_watcher(f->s, "sip:carol@sip.test"), 1);
}

struct limit_case {
	const char *name;
	size_t max_subs, per_user;
	int want_third; /* adding a third subscription for alice */
};

static const struct limit_case limits[] = {
    {"no limits", 0, 0, 0},           {"per user reached", 0, 2, -EDQUOT},
    {"total reached", 3, 0, -ENOSPC}, {"both, total first", 3, 2, -ENOSPC},
    {"room left", 10, 5, 0},
};

static void test_limits(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		struct fx *f;
		setup((void **)&f);
		struct state_limits lim = {limits[i].max_subs, limits[i].per_user};
		state_set_limits(f->s, &lim);
		add(f, SUB_DIR_SIP_WATCHER, "sip:alice@sip.test", "a@xmpp.test",
		    SUB_SW_ACTIVE);
		add(f, SUB_DIR_SIP_WATCHER, "sip:alice@sip.test", "b@xmpp.test",
		    SUB_SW_ACTIVE);
		add(f, SUB_DIR_SIP_WATCHER, "sip:dave@sip.test", "a@xmpp.test",
		    SUB_SW_ACTIVE);
		struct state_sub *sub = NULL;
		int e = state_sub_add(f->s, SUB_DIR_SIP_WATCHER, "sip:alice@sip.test",
		                      "c@xmpp.test", &sub);
		if (e != limits[i].want_third)
			fail_msg("case '%s': got %d, want %d", limits[i].name, e,
			         limits[i].want_third);
		teardown((void **)&f);
	}
}

static void test_restart_restores(void **state)
{
	struct fx *f = *state;
	struct state_sub *a = add(f, SUB_DIR_SIP_WATCHER, "sip:alice@sip.test",
	                          "bob@xmpp.test", SUB_SW_ACTIVE);
	assert_int_equal(state_sub_set_dialog(f->s, a, "call-9", "lt", "rt"), 0);
	assert_int_equal(state_set_str(&a->route_set, "<sip:lync01.sip.test;lr>"), 0);
	assert_int_equal(state_set_str(&a->peer, "lync"), 0);
	a->remote_cseq = 12;
	a->expires_at = 123456;
	assert_int_equal(state_sub_save(f->s, a), 0);
	add(f, SUB_DIR_XMPP_WATCHER, "bob@xmpp.test", "sip:alice@sip.test",
	    SUB_XW_BACKOFF);
	/* A subscription that never reached a phase is not in the store. */
	struct state_sub *tmp;
	assert_int_equal(state_sub_add(f->s, SUB_DIR_SIP_WATCHER, "sip:eve@sip.test",
	                               "bob@xmpp.test", &tmp),
	                 0);
	size_t skipped = 99;
	restart(f, &skipped);
	assert_int_equal(skipped, 0);
	assert_int_equal(state_sub_count(f->s), 2);
	struct state_sub *r = state_sub_by_dialog(f->s, "call-9", "lt");
	assert_non_null(r);
	assert_int_equal(r->st.phase, SUB_SW_ACTIVE);
	assert_string_equal(r->remote_tag, "rt");
	assert_string_equal(r->route_set, "<sip:lync01.sip.test;lr>");
	assert_string_equal(r->peer, "lync");
	assert_int_equal(r->remote_cseq, 12);
	assert_int_equal(r->expires_at, 123456);
	r = state_sub_get(f->s, SUB_DIR_XMPP_WATCHER, "bob@xmpp.test",
	                  "sip:alice@sip.test");
	assert_non_null(r);
	assert_int_equal(r->st.phase, SUB_XW_BACKOFF);
	size_t n;
	state_subs_of(f->s, "bob@xmpp.test", &n);
	assert_int_equal(n, 1);
	/* Dropped ones stay dropped. */
	assert_int_equal(state_sub_drop(f->s, r), 0);
	restart(f, NULL);
	assert_int_equal(state_sub_count(f->s), 1);
}

static void test_unknown_phase_skipped(void **state)
{
	struct fx *f = *state;
	struct store_sub bad = {.dir = 0,
	                        .watcher = "sip:a@sip.test",
	                        .presentity = "b@xmpp.test",
	                        .phase = "from-the-future"};
	struct store_sub baddir = {.dir = 7,
	                           .watcher = "sip:a@sip.test",
	                           .presentity = "c@xmpp.test",
	                           .phase = "sw-active"};
	assert_int_equal(store_sub_put(f->store, &bad), 0);
	assert_int_equal(store_sub_put(f->store, &baddir), 0);
	size_t skipped = 0;
	restart(f, &skipped);
	assert_int_equal(skipped, 2);
	assert_int_equal(state_sub_count(f->s), 0);
}

static struct pres_entry entry(const char *id, bool open, enum pres_activity act,
                               const char *note, int prio)
{
	struct pres_entry e;
	memset(&e, 0, sizeof(e));
	snprintf(e.id, sizeof(e.id), "%s", id);
	e.open = open;
	e.activity = act;
	snprintf(e.note, sizeof(e.note), "%s", note);
	e.priority = prio;
	return e;
}

static void test_presence_cache(void **state)
{
	struct fx *f = *state;
	struct pres_entry e1 = entry("laptop", true, PRES_ACT_AWAY, "lunch", 5);
	struct pres_entry e2 = entry("phone", true, PRES_ACT_AVAILABLE, "", 0);
	struct pres_entry e3 = entry("laptop", true, PRES_ACT_DND, "meeting", 5);
	e3.device = true;
	assert_int_equal(state_pres_set(f->s, "bob@xmpp.test", &e1, 10), 0);
	assert_int_equal(state_pres_set(f->s, "bob@xmpp.test", &e2, 11), 0);
	assert_int_equal(state_pres_set(f->s, "bob@xmpp.test", &e3, 12), 0);
	const struct state_pres *p = state_pres_get(f->s, "bob@xmpp.test");
	assert_int_equal(p->nres, 2);
	struct pres *m = malloc(sizeof(*m));
	state_pres_model(f->s, "bob@xmpp.test", m);
	assert_int_equal(m->n, 2);
	restart(f, NULL);
	p = state_pres_get(f->s, "bob@xmpp.test");
	assert_non_null(p);
	assert_int_equal(p->nres, 2);
	for (size_t i = 0; i < p->nres; i++)
		if (strcmp(p->res[i].resource, "laptop") == 0) {
			assert_int_equal(p->res[i].activity, PRES_ACT_DND);
			assert_string_equal(p->res[i].note, "meeting");
			assert_int_equal(p->res[i].priority, 5);
			/* RFC 7247 6.3: that the id is a device survives a restart */
			assert_true(p->res[i].device);
		} else {
			assert_false(p->res[i].device);
		}
	state_pres_model(f->s, "bob@xmpp.test", m);
	for (size_t i = 0; i < m->n; i++)
		assert_int_equal(m->e[i].device, strcmp(m->e[i].id, "laptop") == 0);
	/* Going offline removes the resource, in memory and in the store. */
	struct pres_entry off = entry("laptop", false, PRES_ACT_OFFLINE, "", 0);
	assert_int_equal(state_pres_set(f->s, "bob@xmpp.test", &off, 13), 0);
	off = entry("phone", false, PRES_ACT_OFFLINE, "", 0);
	assert_int_equal(state_pres_set(f->s, "bob@xmpp.test", &off, 14), 0);
	restart(f, NULL);
	state_pres_model(f->s, "bob@xmpp.test", m);
	assert_int_equal(m->n, 0);
	state_pres_model(f->s, "unknown@xmpp.test", m);
	assert_int_equal(m->n, 0);
	free(m);
}

static void test_im_sessions(void **state)
{
	struct fx *f = *state;
	struct state_im *im, *dup;
	assert_int_equal(state_im_add(f->s, "im-call", "sip:alice@sip.test",
	                              "bob@xmpp.test", "thr-1", true, &im),
	                 0);
	assert_int_equal(state_im_add(f->s, "im-call", "sip:x@sip.test", "y@xmpp.test",
	                              "t", false, &dup),
	                 -EEXIST);
	im->local_cseq = 4;
	assert_int_equal(state_set_str(&im->remote_tag, "rt"), 0);
	assert_int_equal(state_im_save(f->s, im), 0);
	restart(f, NULL);
	im = state_im_by_thread(f->s, "bob@xmpp.test", "thr-1");
	assert_non_null(im);
	assert_ptr_equal(state_im_by_dialog(f->s, "im-call"), im);
	assert_int_equal(im->local_cseq, 4);
	assert_string_equal(im->remote_tag, "rt");
	assert_true(im->sip_initiated);
	assert_null(state_im_by_thread(f->s, "bob@xmpp.test", "thr-2"));
	assert_int_equal(state_im_drop(f->s, im), 0);
	assert_int_equal(state_im_count(f->s), 0);
	restart(f, NULL);
	assert_int_equal(state_im_count(f->s), 0);
}

static void drop_all(struct state_sub *sub, void *arg)
{
	struct state *s = arg;
	state_sub_drop(s, sub);
}

/* Many subscriptions on few presentities; dropping them all while walking. */
static void test_many_and_drop_while_walking(void **state)
{
	struct fx *f = *state;
	char w[64], p[64];
	for (int i = 0; i < 3000; i++) {
		snprintf(w, sizeof(w), "sip:user%d@sip.test", i);
		snprintf(p, sizeof(p), "contact%d@xmpp.test", i % 7);
		add(f, SUB_DIR_SIP_WATCHER, w, p, SUB_SW_ACTIVE);
	}
	size_t n, total = 0;
	for (int k = 0; k < 7; k++) {
		snprintf(p, sizeof(p), "contact%d@xmpp.test", k);
		state_subs_of(f->s, p, &n);
		total += n;
	}
	assert_int_equal(total, 3000);
	state_sub_each(f->s, drop_all, f->s);
	assert_int_equal(state_sub_count(f->s), 0);
	restart(f, NULL);
	assert_int_equal(state_sub_count(f->s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sub_indexes, setup, teardown),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test_setup_teardown(test_restart_restores, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_phase_skipped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_presence_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_im_sessions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_and_drop_while_walking, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
