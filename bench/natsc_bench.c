/*
 * Peer benchmark: the same scenarios as natsbus-bench, driven through nats.c (libnats) so that
 * scripts/bench.sh can put the two clients side by side.
 *
 *   natsc-bench [--url URL] [--scenario info-sync|sync|async|core|core-js|configure] [--storage memory|file]
 *               [--size N] [--msgs N] [--max-pending N] [--keep] [--msg-ids]
 *
 * Unknown "--x" flags are ignored; one consumes the following argument unless that starts with "--"
 * (so the driver can pass e.g. "--server-pid 1234" to every client).
 *
 * Prints exactly one key=value line on stdout. Only the scenario loop is timed (monotonic clock and
 * getrusage(RUSAGE_SELF) deltas, which cover all of nats.c's threads). Publish failures are counted
 * in errors=, not fatal; failing to connect or to create the stream exits non-zero.
 */
#define _POSIX_C_SOURCE 200809L

#include <nats/nats.h>

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define STREAM_NAME "BENCH"
#define STREAM_SUBJECTS "bench.>"
#define DATA_SUBJECT "bench.data"
#define CORE_SUBJECT "core.bench"

typedef enum { SC_INFO_SYNC, SC_SYNC, SC_ASYNC, SC_CORE, SC_CORE_JS, SC_CONFIGURE, SC_CONNECT, SC_FETCH, SC_CONSUME,
               SC_ORDERED } scenario_t;

static const char *const scenario_names[] = {"info-sync", "sync",    "async",   "core",   "core-js",
                                             "configure", "connect", "fetch", "consume", "ordered"};

/* The configure scenario: as many streams as natsbus-bench's (--topics, 1,000 by default), named alike, one
 * js_AddStream (then one js_DeleteStream) at a time: nats.c has no pipelined stream management. */
#define CONFIGURE_TOPICS 1000

typedef struct {
    const char *url;
    scenario_t scenario;
    bool file_storage;
    long long size;
    long long msgs;
    long long max_pending;
    bool keep;
    bool msg_ids;
    long long batch;       /* fetch, consume, ordered: messages per pull */
    long long topics;      /* configure: streams created (--topics) */
    long server_pid;       /* configure: the nats-server's pid (--server-pid), for its CPU time; 0: not measured */
    const char *durable;   /* fetch, consume: the durable consumer's name */
    /* Security, as natsbus-bench takes it: --tls-ca, --tls-cert, --tls-key, --tls-name, --creds, --nkey-seed (a seed
     * file; nats.c also needs the public key: --nkey-pub), --user, --password, --token. */
    const char *tls_ca, *tls_cert, *tls_key, *tls_name, *creds, *nkey_seed, *nkey_pub, *user, *password, *token;
} config_t;

/* The flag's slot in cfg, or NULL when it is not a security flag. */
static const char **security_slot(config_t *cfg, const char *flag) {
    if (strcmp(flag, "--tls-ca") == 0) return &cfg->tls_ca;
    if (strcmp(flag, "--tls-cert") == 0) return &cfg->tls_cert;
    if (strcmp(flag, "--tls-key") == 0) return &cfg->tls_key;
    if (strcmp(flag, "--tls-name") == 0) return &cfg->tls_name;
    if (strcmp(flag, "--creds") == 0) return &cfg->creds;
    if (strcmp(flag, "--nkey-seed") == 0) return &cfg->nkey_seed;
    if (strcmp(flag, "--nkey-pub") == 0) return &cfg->nkey_pub;
    if (strcmp(flag, "--user") == 0) return &cfg->user;
    if (strcmp(flag, "--password") == 0) return &cfg->password;
    if (strcmp(flag, "--token") == 0) return &cfg->token;
    return NULL;
}

/* Written by nats.c's reply-delivery thread, read by main after js_PublishAsyncComplete. */
static atomic_llong async_acks;
static atomic_llong async_errors;

static void usage(FILE *out) {
    fprintf(out,
            "usage: natsc-bench [--url URL] [--scenario info-sync|sync|async|core|core-js|configure]\n"
            "                   [--storage memory|file] [--size N] [--msgs N] [--max-pending N]\n"
            "                   [--keep] [--msg-ids] [--batch N] [--durable NAME] [--topics N]\n"
            "                   [--server-pid PID]\n"
            "  configure: --topics N (1,000) streams created one by one, then deleted one by one; --server-pid: the\n"
            "  server's CPU time during the creations (server_cpu_s=)\n"
            "  fetch, consume, ordered: BENCH filled with --msgs messages, then read back (fetch and consume:\n"
            "  natsSubscription_Fetch of --batch, acking each; nats.c 3.4 has no continuous pull, so consume is\n"
            "  fetch; ordered: an ordered push subscription)\n"
            "                   [--tls-ca F] [--tls-cert F] [--tls-key F] [--tls-name NAME] [--creds F]\n"
            "                   [--nkey-seed F --nkey-pub U...] [--user U] [--password P] [--token T]\n");
}

static bool parse_count(const char *flag, const char *text, long long min, long long *out) {
    char *end = NULL;
    long long v;
    if (text == NULL) {
        fprintf(stderr, "natsc-bench: %s needs a value\n", flag);
        return false;
    }
    v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v < min) {
        fprintf(stderr, "natsc-bench: bad value for %s: '%s' (integer >= %lld expected)\n", flag, text, min);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_args(int argc, char **argv, config_t *cfg) {
    cfg->url = "nats://127.0.0.1:4222";
    cfg->scenario = SC_ASYNC;
    cfg->file_storage = false;
    cfg->size = 16;
    cfg->msgs = 100000;
    cfg->max_pending = 4000;
    cfg->keep = false;
    cfg->msg_ids = false;
    cfg->batch = 100;
    cfg->topics = CONFIGURE_TOPICS;
    cfg->server_pid = 0;
    cfg->durable = "BENCHC";
    cfg->tls_ca = cfg->tls_cert = cfg->tls_key = cfg->tls_name = cfg->creds = NULL;
    cfg->nkey_seed = cfg->nkey_pub = cfg->user = cfg->password = cfg->token = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = (i + 1 < argc) ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (security_slot(cfg, a) != NULL) {
            if (next == NULL) {
                fprintf(stderr, "natsc-bench: %s needs a value\n", a);
                return false;
            }
            *security_slot(cfg, a) = next;
            i++;
        } else if (strcmp(a, "--batch") == 0) {
            if (!parse_count(a, next, 1, &cfg->batch))
                return false;
            i++;
        } else if (strcmp(a, "--topics") == 0) {
            if (!parse_count(a, next, 1, &cfg->topics))
                return false;
            i++;
        } else if (strcmp(a, "--server-pid") == 0) {
            long long pid = 0;
            if (!parse_count(a, next, 1, &pid))
                return false;
            cfg->server_pid = (long)pid;
            i++;
        } else if (strcmp(a, "--durable") == 0) {
            if (next == NULL) {
                fprintf(stderr, "natsc-bench: --durable needs a value\n");
                return false;
            }
            cfg->durable = next;
            i++;
        } else if (strcmp(a, "--url") == 0) {
            if (next == NULL) {
                fprintf(stderr, "natsc-bench: --url needs a value\n");
                return false;
            }
            cfg->url = next;
            i++;
        } else if (strcmp(a, "--scenario") == 0) {
            bool found = false;
            for (size_t k = 0; next != NULL && k < sizeof scenario_names / sizeof scenario_names[0]; k++) {
                if (strcmp(next, scenario_names[k]) == 0) {
                    cfg->scenario = (scenario_t)k;
                    found = true;
                }
            }
            if (!found) {
                fprintf(stderr, "natsc-bench: bad --scenario '%s'\n", next ? next : "");
                return false;
            }
            i++;
        } else if (strcmp(a, "--storage") == 0) {
            if (next != NULL && strcmp(next, "memory") == 0) {
                cfg->file_storage = false;
            } else if (next != NULL && strcmp(next, "file") == 0) {
                cfg->file_storage = true;
            } else {
                fprintf(stderr, "natsc-bench: bad --storage '%s' (memory|file)\n", next ? next : "");
                return false;
            }
            i++;
        } else if (strcmp(a, "--size") == 0) {
            if (!parse_count(a, next, 0, &cfg->size) || cfg->size > 64LL * 1024 * 1024) {
                if (cfg->size > 64LL * 1024 * 1024)
                    fprintf(stderr, "natsc-bench: --size too large\n");
                return false;
            }
            i++;
        } else if (strcmp(a, "--msgs") == 0) {
            if (!parse_count(a, next, 1, &cfg->msgs))
                return false;
            i++;
        } else if (strcmp(a, "--max-pending") == 0) {
            if (!parse_count(a, next, 1, &cfg->max_pending))
                return false;
            i++;
        } else if (strcmp(a, "--keep") == 0) {
            cfg->keep = true;
        } else if (strcmp(a, "--msg-ids") == 0) {
            cfg->msg_ids = true;
        } else if (strncmp(a, "--", 2) == 0) {
            /* Unknown flag: ignored, together with its value if it has one. */
            if (next != NULL && strncmp(next, "--", 2) != 0)
                i++;
        } else {
            fprintf(stderr, "natsc-bench: unexpected argument '%s'\n", a);
            usage(stderr);
            return false;
        }
    }
    return true;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double timeval_seconds(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

/* A process's CPU time (user + system) in seconds from /proc/PID/stat; -1 without a pid or when unreadable. */
static double process_cpu_seconds(long pid) {
    char path[64], buf[1024];
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces: the fields counted from the last ')' (utime and stime: 14th and 15th). */
    const char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void report_status(const char *what, natsStatus s, jsErrCode jerr) {
    const char *last = nats_GetLastError(NULL);
    fprintf(stderr, "natsc-bench: %s failed: %s (jetstream error %d)%s%s\n", what, natsStatus_GetText(s), (int)jerr,
            last ? ": " : "", last ? last : "");
}

/* Called for every async publish (AckHandler replaces ErrHandler); the library hands us the message. */
static void on_async_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)js;
    (void)closure;
    if (pa != NULL && pae == NULL)
        atomic_fetch_add_explicit(&async_acks, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&async_errors, 1, memory_order_relaxed);
    natsMsg_Destroy(msg);
}

/* One stream with one subject pattern. */
static natsStatus add_stream(jsCtx *js, const char *name, const char *subject, bool file_storage, jsErrCode *jerr) {
    jsStreamConfig sc;
    const char *subjects[] = {subject};
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = file_storage ? js_FileStorage : js_MemoryStorage;
    jsStreamInfo *si = NULL;
    *jerr = 0;
    natsStatus s = js_AddStream(&si, js, &sc, NULL, jerr);
    jsStreamInfo_Destroy(si);
    return s;
}

static bool recreate_stream(jsCtx *js, bool file_storage) {
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteStream(js, STREAM_NAME, NULL, &jerr);
    if (s != NATS_OK && jerr != JSStreamNotFoundErr && s != NATS_NOT_FOUND) {
        /* Not fatal by itself; js_AddStream below tells whether the stream is usable. */
        report_status("deleting stream " STREAM_NAME, s, jerr);
    }

    s = add_stream(js, STREAM_NAME, STREAM_SUBJECTS, file_storage, &jerr);
    if (s != NATS_OK) {
        report_status("creating stream " STREAM_NAME, s, jerr);
        return false;
    }
    return true;
}

/* Core publish, optionally carrying a Nats-Msg-Id header (needs a natsMsg then). */
static natsStatus core_publish(natsConnection *nc, const char *subject, const char *payload, int size,
                               const char *msg_id) {
    if (msg_id == NULL)
        return natsConnection_Publish(nc, subject, payload, size);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, payload, size);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(nc, m);
    natsMsg_Destroy(m);
    return s;
}

static int run_configure(jsCtx *js, bool file_storage, long long topics, long server_pid) {
    char name[64], subject[64];
    long long errors = 0;
    /* Leftovers of an interrupted run would turn creations into no-ops: remove them first (untimed). */
    for (long long i = 0; i < topics; i++) {
        snprintf(name, sizeof name, "cfgbench_t%lld", i);
        jsErrCode jerr = 0;
        (void)js_DeleteStream(js, name, NULL, &jerr);
    }
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double s0 = process_cpu_seconds(server_pid);
    double t0 = now_seconds();
    for (long long i = 0; i < topics; i++) {
        snprintf(name, sizeof name, "cfgbench_t%lld", i);
        snprintf(subject, sizeof subject, "cfgbench.t%lld", i);
        jsErrCode jerr = 0;
        natsStatus s = add_stream(js, name, subject, file_storage, &jerr);
        if (s != NATS_OK && errors++ == 0)
            report_status("js_AddStream", s, jerr);
    }
    double t1 = now_seconds();
    double s1 = process_cpu_seconds(server_pid);
    getrusage(RUSAGE_SELF, &ru1);
    /* Client CPU (user + system, every thread) per created stream, in microseconds. */
    double cpu_us = (timeval_seconds(ru1.ru_utime) - timeval_seconds(ru0.ru_utime) + timeval_seconds(ru1.ru_stime) -
                     timeval_seconds(ru0.ru_stime)) / (double)topics * 1e6;
    for (long long i = 0; i < topics; i++) {
        snprintf(name, sizeof name, "cfgbench_t%lld", i);
        jsErrCode jerr = 0;
        natsStatus s = js_DeleteStream(js, name, NULL, &jerr);
        if (s != NATS_OK && errors++ == 0)
            report_status("js_DeleteStream", s, jerr);
    }
    double t2 = now_seconds();
    printf("client=natsc scenario=configure storage=%s topics=%lld create_one_by_one_s=%.6f "
           "delete_one_by_one_s=%.6f create_one_by_one_cpu_us=%.1f server_cpu_s=%.2f errors=%lld\n",
           file_storage ? "file" : "memory", topics, t1 - t0, t2 - t1, cpu_us,
           s0 < 0 || s1 < 0 ? -1.0 : s1 - s0, errors);
    fflush(stdout);
    return errors == 0 ? 0 : 1;
}

/* The connection the flags describe: URL, TLS, credentials. */
static natsStatus connect_with(const config_t *cfg, natsConnection **nc) {
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetURL(opts, cfg->url);
    if (s == NATS_OK && (cfg->tls_ca || cfg->tls_cert || cfg->tls_name)) s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK && cfg->tls_ca) s = natsOptions_LoadCATrustedCertificates(opts, cfg->tls_ca);
    if (s == NATS_OK && cfg->tls_cert) s = natsOptions_LoadCertificatesChain(opts, cfg->tls_cert, cfg->tls_key);
    if (s == NATS_OK && cfg->tls_name) s = natsOptions_SetExpectedHostname(opts, cfg->tls_name);
    if (s == NATS_OK && cfg->creds) s = natsOptions_SetUserCredentialsFromFiles(opts, cfg->creds, NULL);
    if (s == NATS_OK && cfg->nkey_seed) s = natsOptions_SetNKeyFromSeed(opts, cfg->nkey_pub, cfg->nkey_seed);
    if (s == NATS_OK && cfg->user) s = natsOptions_SetUserInfo(opts, cfg->user, cfg->password);
    if (s == NATS_OK && cfg->token) s = natsOptions_SetToken(opts, cfg->token);
    if (s == NATS_OK) s = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    return s;
}

int main(int argc, char **argv) {
    config_t cfg;
    if (!parse_args(argc, argv, &cfg))
        return 2;

    natsStatus s = nats_Open(-1);
    if (s != NATS_OK) {
        report_status("nats_Open", s, 0);
        return 1;
    }

    natsConnection *nc = NULL;
    if (cfg.scenario == SC_CONNECT) {
        /* --msgs connects, each to a first PONG (TLS and auth included), then closed. */
        struct rusage ru0, ru1;
        getrusage(RUSAGE_SELF, &ru0);
        const double t0 = now_seconds();
        for (long long i = 0; i < cfg.msgs; i++) {
            s = connect_with(&cfg, &nc);
            if (s != NATS_OK) {
                printf("error=\"%s\" url=%s\n", natsStatus_GetText(s), cfg.url);
                nats_Close();
                return 2;
            }
            natsConnection_Destroy(nc);
            nc = NULL;
        }
        const double seconds = now_seconds() - t0;
        getrusage(RUSAGE_SELF, &ru1);
        printf("client=natsc scenario=connect connects=%lld seconds=%.6f connect_us=%.1f client_user_s=%.6f "
               "client_sys_s=%.6f\n",
               cfg.msgs, seconds, seconds * 1e6 / (double)cfg.msgs,
               (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6,
               (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6);
        nats_Close();
        return 0;
    }
    s = connect_with(&cfg, &nc);
    if (s != NATS_OK) {
        printf("error=\"%s\" url=%s\n", natsStatus_GetText(s), cfg.url);
        nats_Close();
        return 2;
    }

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = cfg.max_pending;
    jo.PublishAsync.AckHandler = on_async_ack;
    /* The default stall wait (200 ms) turns a full window into a publish error; wait as long as a
     * synchronous publish would instead (the window still bounds what is in flight). */
    jo.PublishAsync.StallWait = 30000;

    jsCtx *js = NULL;
    s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
        report_status("creating JetStream context", s, 0);
        natsConnection_Destroy(nc);
        nats_Close();
        return 1;
    }

    if (cfg.scenario == SC_CONFIGURE) {
        int rc = run_configure(js, cfg.file_storage, cfg.topics, cfg.server_pid);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        nats_Close();
        return rc;
    }

    if (!recreate_stream(js, cfg.file_storage)) {
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        nats_Close();
        return 1;
    }

    const int size = (int)cfg.size;
    char *payload = malloc(cfg.size > 0 ? (size_t)cfg.size : 1);
    if (payload == NULL) {
        fprintf(stderr, "natsc-bench: out of memory\n");
        return 1;
    }
    memset(payload, 'x', cfg.size > 0 ? (size_t)cfg.size : 1);

    char id_buf[32];
    long long acks = 0;
    long long errors = 0;
    atomic_store(&async_acks, 0);
    atomic_store(&async_errors, 0);

    natsSubscription *csub = NULL;
    if (cfg.scenario == SC_FETCH || cfg.scenario == SC_CONSUME || cfg.scenario == SC_ORDERED) {
        /* The fill, before the clock starts. */
        jsPubOptions po;
        jsPubOptions_Init(&po);
        for (long long i = 0; i < cfg.msgs; i++) {
            s = js_PublishAsync(js, DATA_SUBJECT, payload, size, &po);
            if (s != NATS_OK) {
                report_status("js_PublishAsync (fill)", s, 0);
                return 1;
            }
        }
        jsPubOptions_Init(&po);
        po.MaxWait = 60000;
        s = js_PublishAsyncComplete(js, &po);
        if (s != NATS_OK) {
            report_status("js_PublishAsyncComplete (fill)", s, 0);
            return 1;
        }
        jsErrCode jerr = 0;
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = STREAM_NAME;
        if (cfg.scenario == SC_ORDERED) {
            so.Ordered = true;
            s = js_SubscribeSync(&csub, js, STREAM_SUBJECTS, NULL, &so, &jerr);
        } else {
            so.Config.AckPolicy = js_AckExplicit;
            so.Config.MaxAckPending = -1;
            s = js_PullSubscribe(&csub, js, STREAM_SUBJECTS, cfg.durable, NULL, &so, &jerr);
        }
        if (s != NATS_OK) {
            report_status("subscribing", s, jerr);
            return 1;
        }
        natsSubscription_SetPendingLimits(csub, -1, -1);
    }

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    const double t0 = now_seconds();

    switch (cfg.scenario) {
    case SC_FETCH:
    case SC_CONSUME: {
        long long got = 0;
        while (got < cfg.msgs) {
            natsMsgList list = {0};
            jsErrCode jerr = 0;
            s = natsSubscription_Fetch(&list, csub, (int)cfg.batch, 5000, &jerr);
            if (s != NATS_OK) {
                report_status("natsSubscription_Fetch", s, jerr);
                errors++;
                break;
            }
            for (int i = 0; i < list.Count; i++) {
                got++;
                if (natsMsg_Ack(list.Msgs[i], NULL) == NATS_OK)
                    acks++;
            }
            natsMsgList_Destroy(&list);
        }
        s = natsConnection_Flush(nc);
        if (got < cfg.msgs)
            errors += cfg.msgs - got;
        break;
    }
    case SC_ORDERED: {
        long long got = 0;
        while (got < cfg.msgs) {
            natsMsg *msg = NULL;
            s = natsSubscription_NextMsg(&msg, csub, 5000);
            if (s != NATS_OK) {
                report_status("natsSubscription_NextMsg", s, 0);
                errors += cfg.msgs - got;
                break;
            }
            got++;
            natsMsg_Destroy(msg);
        }
        break;
    }
    case SC_INFO_SYNC:
    case SC_SYNC: {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        for (long long i = 0; i < cfg.msgs; i++) {
            jsErrCode jerr = 0;
            if (cfg.scenario == SC_INFO_SYNC) {
                jsStreamInfo *si = NULL;
                s = js_GetStreamInfo(&si, js, STREAM_NAME, NULL, &jerr);
                jsStreamInfo_Destroy(si);
                if (s != NATS_OK) {
                    /* A message counts as failed if either its info lookup or its publish fails. */
                    if (errors++ == 0)
                        report_status("js_GetStreamInfo", s, jerr);
                    continue;
                }
            }
            if (cfg.msg_ids) {
                snprintf(id_buf, sizeof id_buf, "m-%lld", i);
                po.MsgId = id_buf;
            }
            s = js_Publish(NULL, js, DATA_SUBJECT, payload, size, &po, &jerr);
            if (s == NATS_OK) {
                acks++;
            } else if (errors++ == 0) {
                report_status("js_Publish", s, jerr);
            }
        }
        break;
    }
    case SC_ASYNC: {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        for (long long i = 0; i < cfg.msgs; i++) {
            if (cfg.msg_ids) {
                snprintf(id_buf, sizeof id_buf, "m-%lld", i);
                po.MsgId = id_buf;
            }
            s = js_PublishAsync(js, DATA_SUBJECT, payload, size, &po);
            if (s != NATS_OK && errors++ == 0)
                report_status("js_PublishAsync", s, 0);
        }
        s = js_PublishAsyncComplete(js, NULL);
        if (s != NATS_OK)
            report_status("js_PublishAsyncComplete", s, 0);
        break;
    }
    case SC_CONFIGURE:
    case SC_CONNECT:
        break; /* handled before the stream is made */
    case SC_CORE:
    case SC_CORE_JS: {
        const char *subject = cfg.scenario == SC_CORE ? CORE_SUBJECT : DATA_SUBJECT;
        for (long long i = 0; i < cfg.msgs; i++) {
            const char *id = NULL;
            if (cfg.msg_ids) {
                snprintf(id_buf, sizeof id_buf, "m-%lld", i);
                id = id_buf;
            }
            s = core_publish(nc, subject, payload, size, id);
            if (s != NATS_OK && errors++ == 0)
                report_status("natsConnection_Publish", s, 0);
        }
        s = natsConnection_Flush(nc);
        if (s != NATS_OK) {
            report_status("natsConnection_Flush", s, 0);
            errors++;
        }
        break;
    }
    }

    const double t1 = now_seconds();
    getrusage(RUSAGE_SELF, &ru1);

    if (cfg.scenario == SC_ASYNC) {
        acks = atomic_load(&async_acks);
        errors += atomic_load(&async_errors);
        /* Anything neither acked nor failed (e.g. js_PublishAsyncComplete gave up) is an error too. */
        if (acks + errors < cfg.msgs)
            errors = cfg.msgs - acks;
    }

    const double seconds = t1 - t0;
    const double user_s = timeval_seconds(ru1.ru_utime) - timeval_seconds(ru0.ru_utime);
    const double sys_s = timeval_seconds(ru1.ru_stime) - timeval_seconds(ru0.ru_stime);
    const double rate = seconds > 0 ? (double)cfg.msgs / seconds : 0.0;

    printf("client=natsc scenario=%s storage=%s size=%lld msgs=%lld bytes=%lld seconds=%.6f msgs_per_s=%.0f "
           "acks=%lld errors=%lld client_user_s=%.6f client_sys_s=%.6f allocs_per_msg=-1\n",
           scenario_names[cfg.scenario], cfg.file_storage ? "file" : "memory", cfg.size, cfg.msgs,
           cfg.msgs * cfg.size, seconds, rate, acks, errors, user_s, sys_s);
    fflush(stdout);

    if (csub != NULL) {
        if (!cfg.keep || cfg.scenario == SC_ORDERED)
            natsSubscription_Unsubscribe(csub);
        natsSubscription_Destroy(csub);
    }
    if (!cfg.keep) {
        jsErrCode jerr = 0;
        s = js_DeleteStream(js, STREAM_NAME, NULL, &jerr);
        if (s != NATS_OK)
            report_status("deleting stream " STREAM_NAME, s, jerr);
    }

    free(payload);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}
