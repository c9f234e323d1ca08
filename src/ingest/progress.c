/* Ingest progress for the server: progress.json in the collection directory is replaced
 * atomically at most once a second, and a last time with the final state, so `vdx serve`
 * (and `vdx info`) can show an ingest running in another process. The lines people see
 * are drawn by the CLI (src/cli/cli_progress.c) from the same vdx_ingest_stats. A run
 * that fails before it opens its collection still leaves a final "failed" there, so the
 * file never goes on describing an earlier run (unless a live run of another process owns
 * it). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "vdx/ingest.h"

struct vdx_progress {
    char *json_path;
    double started_epoch;
    double last_json;
};

vdx_progress *vdx_progress_new(const char *json_path)
{
    vdx_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (json_path && !(p->json_path = strdup(json_path))) {
        free(p);
        return NULL;
    }
    p->started_epoch = clock_epoch();
    p->last_json = -1e9;
    return p;
}

char *vdx_progress_json(const vdx_ingest_stats *s, const char *state, double started_epoch,
                        double updated_epoch, long pid)
{
    char started[32], updated[32];
    clock_utc_iso(started_epoch, started);
    clock_utc_iso(updated_epoch, updated);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddNumberToObject(o, "done", (double)s->done);
    cJSON_AddNumberToObject(o, "total", (double)s->total);
    cJSON_AddNumberToObject(o, "failed", (double)s->failed);
    cJSON_AddNumberToObject(o, "stored", (double)s->stored);
    cJSON_AddNumberToObject(o, "skipped", (double)s->skipped);
    cJSON_AddNumberToObject(o, "rate", (double)(long)(s->rate * 100.0 + 0.5) / 100.0);
    if (s->eta_s >= 0)
        cJSON_AddNumberToObject(o, "eta_s", (double)(long)(s->eta_s + 0.5));
    else
        cJSON_AddNullToObject(o, "eta_s");
    cJSON_AddStringToObject(o, "started", started);
    cJSON_AddStringToObject(o, "updated", updated);
    cJSON_AddNumberToObject(o, "pid", (double)pid);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static int write_json(vdx_progress *p, const vdx_ingest_stats *s, const char *state,
                      vdx_error *err)
{
    if (!p->json_path)
        return 0;
    char *text = vdx_progress_json(s, state, p->started_epoch, clock_epoch(), (long)getpid());
    if (!text)
        return vdx_fail_oom(err, "writing %s", p->json_path);
    int rc = vdx_write_file_atomic(p->json_path, text, strlen(text), err);
    free(text);
    return rc;
}

int vdx_progress_update(vdx_progress *p, const vdx_ingest_stats *s, vdx_error *err)
{
    double now = vdx_now();
    if (now - p->last_json < 1.0)
        return 0;
    p->last_json = now;
    return write_json(p, s, "running", err);
}

int vdx_progress_finish(vdx_progress *p, const vdx_ingest_stats *s, const char *state,
                        vdx_error *err)
{
    return write_json(p, s, state, err);
}

int vdx_progress_fail_early(vdx_progress *p, const vdx_ingest_stats *s, vdx_error *err)
{
    if (!p->json_path)
        return 0;
    /* the collection must exist already: a failed first run creates nothing */
    char *dir = strdup(p->json_path);
    if (!dir)
        return vdx_fail_oom(err, "writing %s", p->json_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    struct stat st;
    int exists = stat(slash ? dir : ".", &st) == 0 && S_ISDIR(st.st_mode);
    free(dir);
    if (!exists)
        return 0;
    /* a run of another live process owns the file (it holds the collection's lock) */
    char *text = NULL;
    size_t size = 0;
    if (vdx_read_file(p->json_path, &text, &size, NULL) == 0) {
        cJSON *old = cJSON_ParseWithLength(text, size);
        free(text);
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(old, "state");
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(old, "pid");
        int live = cJSON_IsString(state) && !strcmp(state->valuestring, "running") &&
                   cJSON_IsNumber(pid) && pid->valuedouble > 0 &&
                   (pid_t)pid->valuedouble != getpid() &&
                   (kill((pid_t)pid->valuedouble, 0) == 0 || errno != ESRCH);
        cJSON_Delete(old);
        if (live)
            return 0;
    }
    return write_json(p, s, "failed", err);
}

void vdx_progress_free(vdx_progress *p)
{
    if (!p)
        return;
    free(p->json_path);
    free(p);
}
