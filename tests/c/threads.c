/*
 * Four pthreads share one perfsink_sink handle: each registers the same series (and must get
 * the same id), submits BATCHES batches of BATCH points with timestamps no other thread uses,
 * and checks that each refusal's message (in the call's own buffer) is its own while the
 * other threads fail concurrently with messages of theirs.
 * The main thread reads the stats meanwhile. Run by tests/c_abi.rs:
 *
 *   threads 'INFLUXDB_URL=http://127.0.0.1:PORT;INFLUXDB_DB=db;...'
 *
 * Expected in InfluxDB: THREADS * BATCHES * BATCH points in measurement c_threads.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "perfsink.h"

#define THREADS 4
#define BATCHES 50
#define BATCH 100
#define T0 1700000000000000000

struct worker {
    const perfsink_sink *sink;
    int index;
    uint32_t series;
    int failed; /* set by the worker: 0 on success */
};

static void *work(void *arg)
{
    struct worker *w = arg;
    perfsink_tag tags[1];
    perfsink_point points[BATCH];
    char expected[64], msg[128];
    size_t accepted;
    perfsink_result rc;
    int b, i;

    tags[0].key = "test";
    tags[0].key_len = 4;
    tags[0].value = "threads";
    tags[0].value_len = 7;
    rc = perfsink_sink_register_series(w->sink, "c_threads", 9, tags, 1, NULL, 0, &w->series, msg,
                                       sizeof msg);
    if (rc != PERFSINK_OK) {
        fprintf(stderr, "thread %d: register: %s: %s\n", w->index, perfsink_result_name(rc), msg);
        w->failed = 1;
        return NULL;
    }
    for (b = 0; b < BATCHES; b++) {
        for (i = 0; i < BATCH; i++) {
            int64_t k = (int64_t)b * BATCH + i; /* this thread's k-th point */
            memset(&points[i], 0, sizeof points[i]);
            points[i].series = w->series;
            points[i].value = (double)(w->index * 1000000 + k);
            points[i].timestamp_ns = T0 + (k * THREADS + w->index) * 1000; /* unique */
        }
        rc = perfsink_sink_submit(w->sink, points, BATCH, &accepted, msg, sizeof msg);
        if (rc != PERFSINK_OK || accepted != BATCH) {
            fprintf(stderr, "thread %d: submit: %s (%zu accepted): %s\n", w->index,
                    perfsink_result_name(rc), accepted, msg);
            w->failed = 1;
            return NULL;
        }
        /* A refusal whose message only this thread can have: messages are per call. */
        if (b % 10 == 0) {
            points[0].series = 1000000u + (uint32_t)w->index;
            rc = perfsink_sink_submit(w->sink, points, 1, NULL, msg, sizeof msg);
            snprintf(expected, sizeof expected, "unknown series id %" PRIu32, points[0].series);
            if (rc != PERFSINK_UNKNOWN_SERIES || strcmp(msg, expected) != 0) {
                fprintf(stderr, "thread %d: got %s \"%s\", want %s\n", w->index,
                        perfsink_result_name(rc), msg, expected);
                w->failed = 1;
                return NULL;
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    perfsink_sink *sink = NULL;
    perfsink_stats st;
    perfsink_close_report report;
    perfsink_result rc;
    char msg[256];
    int i, bad = 0, polls = 0;
    const uint64_t total = (uint64_t)THREADS * BATCHES * BATCH;
    const uint64_t refused = (uint64_t)THREADS * (BATCHES / 10);

    if (argc != 2) {
        fprintf(stderr, "usage: %s 'INFLUXDB_URL=...;...'\n", argv[0]);
        return 2;
    }
    rc = perfsink_sink_open(argv[1], strlen(argv[1]), &sink, msg, sizeof msg);
    if (rc != PERFSINK_OK) {
        fprintf(stderr, "open: %s: %s\n", perfsink_result_name(rc), msg);
        return 1;
    }
    for (i = 0; i < THREADS; i++) {
        workers[i].sink = sink;
        workers[i].index = i;
        workers[i].series = 0;
        workers[i].failed = 0;
        if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    /* The main thread reads the counters while the workers submit (for at most 10 s). */
    do {
        const struct timespec pause = {0, 100000};
        rc = perfsink_sink_stats(sink, &st, sizeof st, NULL, 0);
        nanosleep(&pause, NULL);
    } while (rc == PERFSINK_OK && st.accepted < total / 2 && ++polls < 100000);
    bad |= rc != PERFSINK_OK;
    for (i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        bad |= workers[i].failed;
        if (workers[i].series != workers[0].series) {
            fprintf(stderr, "thread %d got series %" PRIu32 ", thread 0 got %" PRIu32 "\n", i,
                    workers[i].series, workers[0].series);
            bad = 1;
        }
    }
    rc = perfsink_sink_flush(sink, 30000, msg, sizeof msg);
    if (rc != PERFSINK_OK) {
        fprintf(stderr, "flush: %s: %s\n", perfsink_result_name(rc), msg);
        bad = 1;
    }
    rc = perfsink_sink_close(sink, &report, sizeof report, msg, sizeof msg);
    perfsink_sink_free(sink);
    if (rc != PERFSINK_OK) {
        fprintf(stderr, "close: %s: %s\n", perfsink_result_name(rc), msg);
        return 1;
    }
    st = report.stats;
    printf("threads: accepted %" PRIu64 ", written %" PRIu64 ", rejected_invalid %" PRIu64
           ", series %" PRIu64 " (%d polls)\n",
           st.accepted, st.written, st.rejected_invalid, st.series, polls);
    if (st.accepted != total || st.written != total || st.rejected_invalid != refused ||
        st.dropped != 0 || st.series != 1) {
        fprintf(stderr, "threads: want accepted = written = %" PRIu64 ", rejected_invalid %" PRIu64
                "\n", total, refused);
        bad = 1;
    }
    return bad ? 1 : 0;
}
