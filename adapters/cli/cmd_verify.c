/* cmd_verify.c - docket verify: the chain, signatures, tree, checkpoints and casework
 * rules of a ledger opened read-only, with the records only today's append rules refuse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The notices verify passes on (dk_verify_opts.notice), listed afterwards in seq order. */
typedef struct notices {
    struct notice {
        uint64_t seq;
        char *why;
    } * v;
    size_t n, cap;
    int oom;
} notices;

static void take_notice(void *arg, uint64_t seq, const char *why)
{
    notices *ns = arg;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? 2 * ns->cap : 8;
        struct notice *more = realloc(ns->v, cap * sizeof *more);
        if (more == NULL) {
            ns->oom = 1;
            return;
        }
        ns->v = more;
        ns->cap = cap;
    }
    char *copy = strdup(why);
    if (copy == NULL) {
        ns->oom = 1;
        return;
    }
    ns->v[ns->n].seq = seq;
    ns->v[ns->n++].why = copy;
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = ((const struct notice *)a)->seq, y = ((const struct notice *)b)->seq;
    return (x > y) - (x < y);
}

static void notices_free(notices *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i].why);
    free(ns->v);
}

/* The ledger must hold the checkpoint's tree: same origin, at least that many records,
 * the same root at that size. If not, *why says what disagrees: the ledger verified on its
 * own, so this is no damage at a seq, but either the checkpoint is of another ledger or this
 * one was rewritten (or cut short). */
static int against_checkpoint(dk_ledger *lg, const dk_checkpoint *cp, char *why, size_t cap)
{
    char origin[64], cp_root[64], root_b64[64];
    dk_head h;
    uint8_t root[32];
    int err = dk_ledger_origin(lg, origin);
    if (err == 0)
        err = dk_ledger_head(lg, &h);
    if (err)
        return err;
    why[0] = '\0';
    dk_b64_encode(cp->root, 32, cp_root);
    unsigned long long size = (unsigned long long)cp->size;
    if (strcmp(origin, cp->origin) != 0)
        snprintf(why, cap,
                 "checkpoint %s at size %llu names another ledger than this one (%s): either "
                 "the checkpoint is from another ledger or this ledger was replaced",
                 cp->origin, size, origin);
    else if (cp->size > h.seq)
        snprintf(why, cap,
                 "checkpoint %s at size %llu (root %s) does not match this ledger, which "
                 "holds only %llu records: either the checkpoint is from another ledger or "
                 "records were removed from this one",
                 cp->origin, size, cp_root, (unsigned long long)h.seq);
    else if ((err = dk_ledger_root(lg, cp->size, root)) != 0)
        return err;
    else if (memcmp(root, cp->root, 32) != 0) {
        dk_b64_encode(root, 32, root_b64);
        snprintf(why, cap,
                 "checkpoint %s at size %llu (root %s) does not match this ledger's tree at "
                 "size %llu (root %s): either the checkpoint is from another ledger or this "
                 "ledger was rewritten",
                 cp->origin, size, cp_root, size, root_b64);
    }
    return 0;
}

int cmd_verify(int argc, char **argv)
{
    const char *ledger = NULL, *from = NULL, *jobs = NULL, *ckpt = NULL, *pubkey = NULL;
    int json = 0, no_rules = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL},     {"json", NULL, &json},
                            {"from", &from, NULL},         {"jobs", &jobs, NULL},
                            {"no-rules", NULL, &no_rules}, {"checkpoint", &ckpt, NULL},
                            {"pubkey", &pubkey, NULL},     {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket verify [--from SEQ] [--jobs N] [--no-rules]\n"
        "                     [--checkpoint FILE --pubkey KEY] [--ledger DIR] [--json]\n"
        "Checks every record: layout, dense seq, increasing time, the hash chain,\n"
        "canonical bodies, each signature against its actor's key at that point (on N\n"
        "cores, default all), the indexes and the stored head, every Merkle tree node and\n"
        "signed checkpoint; then re-checks every case's events against the casework rules\n"
        "with the roles enrolled then (--no-rules skips it). --from SEQ checks from SEQ on,\n"
        "trusting the records before it. --checkpoint FILE (signed by KEY, held outside\n"
        "the ledger, e.g. by an auditor) must be a prefix of the ledger: this catches a\n"
        "ledger cut short with its stored checkpoints removed. Exit 0 if intact, 3 if not.\n"
        "Records that an older docket accepted and today's append rules refuse are listed\n"
        "as notices: they stay as written and are not damage (void or correct them by new\n"
        "events where they are wrong).\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos)
        return cli_usage_error("verify takes no positional arguments");
    notices ns = {NULL, 0, 0, 0};
    dk_verify_opts vo = {.skip_rules = no_rules, .notice = take_notice, .notice_arg = &ns};
    uint64_t u;
    if (from && (rc = cli_parse_u64("--from", from, &vo.from)) != EXIT_OK)
        return rc;
    if (jobs) {
        if ((rc = cli_parse_u64("--jobs", jobs, &u)) != EXIT_OK)
            return rc;
        if (u == 0 || u > 256)
            return cli_usage_error("--jobs must be 1..256");
        vo.jobs = (int)u;
    }
    if (!ckpt != !pubkey)
        return cli_usage_error("--checkpoint and --pubkey go together");
    dk_checkpoint cp;
    if (ckpt && (rc = cli_load_checkpoint(ckpt, pubkey, &cp)) != EXIT_OK)
        return rc;
    dk_ledger *lg;
    if ((rc = cli_open_ledger(ledger, 1, &lg)) != EXIT_OK)
        return rc;
    dk_verify_report rep;
    char mismatch[512] = ""; /* the checkpoint's disagreement with an intact ledger */
    int err = dk_ledger_verify_opts(lg, &vo, &rep);
    if (err == 0 && rep.ok && ckpt &&
        (err = against_checkpoint(lg, &cp, mismatch, sizeof mismatch)) == 0 && mismatch[0]) {
        rep.ok = 0;
        rep.seq = cp.size;
    }
    dk_ledger_close(lg);
    if (err == 0 && ns.oom)
        err = DK_ENOMEM;
    if (err) {
        notices_free(&ns);
        return cli_dk_fail(err, "cannot verify");
    }
    if (ns.n) /* qsort takes no NULL, even for none */
        qsort(ns.v, ns.n, sizeof *ns.v, by_seq);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_boolean(rep.ok));
        json_object_set_new(o, "checked", json_integer((json_int_t)rep.checked));
        json_object_set_new(o, "signatures", json_integer((json_int_t)rep.signatures));
        json_object_set_new(o, "cases", json_integer((json_int_t)rep.cases));
        json_object_set_new(o, "tree_checked", json_boolean(rep.tree_checked));
        if (!rep.ok) {
            json_object_set_new(o, "seq", json_integer((json_int_t)rep.seq));
            json_object_set_new(o, "reason", cli_json_text(mismatch[0] ? mismatch : rep.reason));
        }
        json_t *a = json_array();
        for (size_t i = 0; i < ns.n; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "seq", json_integer((json_int_t)ns.v[i].seq));
            json_object_set_new(e, "reason", cli_json_text(ns.v[i].why));
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "notices", a);
        cli_print_json(o);
    } else if (rep.ok) {
        printf("ok: %llu records, %llu signatures, %llu cases verified\n",
               (unsigned long long)rep.checked, (unsigned long long)rep.signatures,
               (unsigned long long)rep.cases);
    } else if (mismatch[0]) {
        printf("FAILED: %s\n", mismatch);
    } else {
        printf("FAILED at seq %llu: %s\n", (unsigned long long)rep.seq, rep.reason);
    }
    if (!json && ns.n) {
        printf("%zu record%s accepted by an older docket break%s rules added since (kept as "
               "written; not damage):\n",
               ns.n, ns.n == 1 ? "" : "s", ns.n == 1 ? "s" : "");
        for (size_t i = 0; i < ns.n; i++)
            printf("  notice: seq %llu: %s\n", (unsigned long long)ns.v[i].seq, ns.v[i].why);
    }
    notices_free(&ns);
    if (rep.ok && !rep.tree_checked) /* said, not hidden: an auditor reads "ok" as all */
        fprintf(stderr, "docket: verify: the stored Merkle tree was not checked: it is not in "
                        "this docket's format (an older docket's, or its format key was "
                        "damaged); open the ledger for writing once to rebuild it, then verify "
                        "again\n");
    if (mismatch[0])
        fprintf(stderr, "docket: verify: %s\n", mismatch);
    else if (!rep.ok)
        fprintf(stderr, "docket: verify: ledger damaged at seq %llu: %s\n",
                (unsigned long long)rep.seq, rep.reason);
    return rep.ok ? EXIT_OK : EXIT_DAMAGE;
}
