/* Labels of a concept and their event log: every change is logged with what it
 * replaced and grouped into actions (one vdx_concept_label call, or one revert) that undo
 * and redo take back and replay whole; the history lists them. Kept apart from training
 * so that the label log has one owner. */
#include "explore/book.h"

#include "common/sqlite_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- labels ------------------------------------------------------------------------- */

/* The current label of an item (-1 when unlabelled) with its url, time and seq. */
typedef struct current_label {
    int label;
    char *url, *time;
    int64_t seq;
} current_label;

static int read_current_label(vdx_concepts *book, int64_t concept, const char *item,
                              current_label *cur, vdx_error *err)
{
    memset(cur, 0, sizeof *cur);
    cur->label = -1;
    sqlite3_stmt *stmt = book_prepare(
        book, "SELECT label, url, time, seq FROM labels WHERE concept = ?1 AND item = ?2",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_text(stmt, 2, item, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        cur->label = sqlite3_column_int(stmt, 0);
        cur->url = book_dup_text(sqlite3_column_text(stmt, 1));
        cur->time = book_dup_text(sqlite3_column_text(stmt, 2));
        cur->seq = sqlite3_column_int64(stmt, 3);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : book_fail(book, err, "reading a label");
}

/* Sets (label >= 0) or removes (label < 0) an item's label row. */
static int write_label(vdx_concepts *book, int64_t concept, const char *item, int label,
                       const char *url, const char *time, int64_t seq, vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(
        book,
        label >= 0 ? "INSERT INTO labels(concept, item, url, label, time, seq)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(concept, item) DO UPDATE"
                     " SET url = excluded.url, label = excluded.label, time = excluded.time,"
                     " seq = excluded.seq"
                   : "DELETE FROM labels WHERE concept = ?1 AND item = ?2",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_text(stmt, 2, item, -1, SQLITE_STATIC);
    if (label >= 0) {
        if (url)
            sqlite3_bind_text(stmt, 3, url, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 4, label);
        sqlite3_bind_text(stmt, 5, time, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 6, seq);
    }
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : book_fail(book, err, "writing a label");
}

/* Applies one change: logs the event (with what it replaces) and updates the label. */
static int apply_change(vdx_concepts *book, const concept_record *rec, int64_t action,
                        const char *item, int label, const char *url, const char *now,
                        int *changed, vdx_error *err)
{
    current_label cur;
    if (read_current_label(book, rec->id, item, &cur, err) != 0)
        return -1;
    int rc = 0;
    if (cur.label != (label < 0 ? -1 : label)) {
        sqlite3_stmt *stmt = book_prepare(
            book,
            "INSERT INTO label_events(concept, round, item, new_label, new_url, time,"
            " old_label, old_url, old_time, old_seq, action)"
            " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
            err);
        if (!stmt) {
            rc = -1;
        } else {
            sqlite3_bind_int64(stmt, 1, rec->id);
            sqlite3_bind_int(stmt, 2, rec->rounds + 1);
            sqlite3_bind_text(stmt, 3, item, -1, SQLITE_STATIC);
            if (label >= 0)
                sqlite3_bind_int(stmt, 4, label);
            if (url)
                sqlite3_bind_text(stmt, 5, url, -1, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 6, now, -1, SQLITE_STATIC);
            if (cur.label >= 0) {
                sqlite3_bind_int(stmt, 7, cur.label);
                if (cur.url)
                    sqlite3_bind_text(stmt, 8, cur.url, -1, SQLITE_STATIC);
                sqlite3_bind_text(stmt, 9, cur.time, -1, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, 10, cur.seq);
            }
            sqlite3_bind_int64(stmt, 11, action);
            if (sqlite3_step(stmt) != SQLITE_DONE)
                rc = book_fail(book, err, "logging a label change");
            sqlite3_finalize(stmt);
        }
        if (rc == 0)
            rc = write_label(book, rec->id, item, label, url, now,
                             sqlite3_last_insert_rowid(book->db), err);
        if (rc == 0)
            (*changed)++;
    }
    free(cur.url);
    free(cur.time);
    return rc;
}

static int next_action(vdx_concepts *book, int64_t concept, int64_t *action, vdx_error *err);

/* The url of an item as the store knows it (NULL when it has none). */
static int item_url(vdx_concepts *book, const char *id, char **url, vdx_error *err)
{
    *url = NULL;
    cJSON *item = NULL;
    if (vdx_store_get_item(book->store, id, &item, err) != 0)
        return -1;
    const cJSON *u = cJSON_GetObjectItem(item, "url");
    if (cJSON_IsString(u))
        *url = strdup(u->valuestring);
    cJSON_Delete(item);
    return 0;
}

/* Appends the counts after a change to a result, and the trainer of the next round (audit
 * labels can change an auto concept's). */
static int add_counts(vdx_concepts *book, const concept_record *rec, cJSON *out, vdx_error *err)
{
    int positive = 0, negative = 0, pending = 0, next_trainer = 0;
    if (concept_counts(book, rec, &positive, &negative, &pending, err) != 0 ||
        concept_next_trainer(book, rec, &next_trainer, err) != 0)
        return -1;
    if (!cJSON_AddNumberToObject(out, "positive", positive) ||
        !cJSON_AddNumberToObject(out, "negative", negative) ||
        !cJSON_AddNumberToObject(out, "pending", pending) ||
        !cJSON_AddStringToObject(out, "next_trainer", concept_trainer_name(next_trainer)))
        return vdx_fail_oom(err, "describing the label counts");
    return 0;
}

int vdx_concept_label(vdx_concepts *book, const char *name, const vdx_label_change *changes,
                      size_t n, cJSON **result, vdx_error *err)
{
    if (result)
        *result = NULL;
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    char **urls = calloc(n ? n : 1, sizeof *urls);
    unsigned char *superseded = calloc(n ? n : 1, 1);
    if (!ids || !urls || !superseded) {
        free(ids);
        free(urls);
        free(superseded);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %zu label changes", n);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        ids[i] = changes[i].id;
        if (!changes[i].id || !*changes[i].id)
            rc = vdx_fail(err, "label change %zu has no item id", i + 1);
        else if (changes[i].label != VDX_LABEL_POSITIVE &&
                 changes[i].label != VDX_LABEL_NEGATIVE && changes[i].label != VDX_LABEL_CLEAR)
            rc = vdx_fail(err, "label change %zu (item '%s'): label %d is not 1, 0 or -1",
                          i + 1, changes[i].id, changes[i].label);
    }
    /* an id given twice keeps its last change: index each id by its position, later
     * positions overwriting earlier ones */
    if (rc == 0 && n > 1) {
        int *positions = malloc(n * sizeof *positions);
        label_set by_position = {.n = n, .ids = (char **)ids, .labels = positions};
        label_index index;
        if (!positions) {
            rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        } else {
            for (size_t i = 0; i < n; i++)
                positions[i] = (int)i;
            rc = label_index_build(&by_position, &index, err);
            for (size_t i = 0; rc == 0 && i < n; i++)
                superseded[i] = label_index_get(&index, ids[i]) != (int)i;
            if (rc == 0)
                label_index_free(&index);
        }
        free(positions);
    }
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    if (rc == 0)
        rc = concept_find(book, name, &rec, err);
    if (rc == 0)
        rc = book_check_ids_known(book, ids, n, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!superseded[i] && changes[i].label >= 0)
            rc = item_url(book, ids[i], &urls[i], err);
    int changed = 0;
    int64_t action = 0;
    if (rc == 0 && (rc = book_begin_write(book, err)) == 0) {
        /* reload inside the transaction: another process may have trained meanwhile */
        concept_record_free(&rec);
        rc = concept_find(book, name, &rec, err);
        char now[32];
        clock_utc_iso_now(now);
        if (rc == 0)
            rc = next_action(book, rec.id, &action, err);
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (!superseded[i])
                rc = apply_change(book, &rec, action, ids[i], changes[i].label, urls[i], now,
                                  &changed, err);
        /* a new action ends what could be redone */
        if (rc == 0 && changed)
            rc = book_run_on_concept(book,
                                "DELETE FROM label_events WHERE undone = 1 AND ?1 IS NULL"
                                " AND concept = ?2",
                                NULL, rec.id, err);
        if (rc == 0 && changed)
            rc = book_touch(book, rec.id, err);
        rc = book_end_write(book, rc, err);
    }
    if (rc == 0 && result) {
        cJSON *out = cJSON_CreateObject();
        int ok = out && cJSON_AddNumberToObject(out, "changed", changed) &&
                 (changed ? cJSON_AddNumberToObject(out, "action", (double)action)
                          : cJSON_AddNullToObject(out, "action")) != NULL;
        rc = ok ? add_counts(book, &rec, out, err)
                : vdx_fail_oom(err, "describing a label action (it is recorded)");
        if (rc == 0)
            *result = out;
        else
            cJSON_Delete(out);
    }
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    for (size_t i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
    free(ids);
    free(superseded);
    return rc;
}

int vdx_concept_labels(vdx_concepts *book, const char *name, cJSON **labels, vdx_error *err)
{
    *labels = NULL;
    pthread_mutex_lock(&book->lock);
    concept_record rec;
    label_set set;
    int rc = concept_find(book, name, &rec, err);
    if (rc == 0) {
        rc = concept_labels_load(book, rec.id, &set, err);
        concept_record_free(&rec);
    }
    if (rc == 0) {
        cJSON *list = cJSON_CreateArray();
        for (size_t i = 0; i < set.n; i++)
            cJSON_AddItemToArray(list, label_set_item_json(&set, i));
        label_set_free(&set);
        *labels = list;
    }
    pthread_mutex_unlock(&book->lock);
    return rc;
}

/* ---- undo / redo / history ---------------------------------------------------------- */

/* The number the next label action of a concept gets. */
static int next_action(vdx_concepts *book, int64_t concept, int64_t *action, vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(
        book, "SELECT COALESCE(MAX(action), 0) + 1 FROM label_events WHERE concept = ?1", err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    int rc = sqlite3_step(stmt);
    *action = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : book_fail(book, err, "numbering a label action");
}

/* The newest action not undone (undo) or the oldest undone one (redo); 0 when none. */
static int pick_action(vdx_concepts *book, int64_t concept, int redo, int64_t *action,
                       vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(
        book,
        redo ? "SELECT COALESCE(MIN(action), 0) FROM label_events WHERE concept = ?1"
               " AND undone = 1"
             : "SELECT COALESCE(MAX(action), 0) FROM label_events WHERE concept = ?1"
               " AND undone = 0",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    int rc = sqlite3_step(stmt);
    *action = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : book_fail(book, err, "finding a label action");
}

/* Takes back (redo = 0: newest change first, each item back to what it replaced) or
 * replays (redo = 1: oldest first) the changes of one action and marks it. changes gets
 * [{"id","label","previous"}] as the labels are now and were before (may be NULL). */
int label_action_replay(vdx_concepts *book, int64_t concept, int64_t action, int redo,
                         cJSON *changes, int *n, vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(
        book,
        redo ? "SELECT item, new_label, new_url, time, seq, old_label FROM label_events"
               " WHERE concept = ?1 AND action = ?2 ORDER BY seq"
             : "SELECT item, old_label, old_url, old_time, old_seq, new_label FROM label_events"
               " WHERE concept = ?1 AND action = ?2 ORDER BY seq DESC",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_int64(stmt, 2, action);
    int rc = 0, step;
    *n = 0;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *item = (const char *)sqlite3_column_text(stmt, 0);
        int to = sqlite3_column_type(stmt, 1) == SQLITE_NULL ? -1 : sqlite3_column_int(stmt, 1);
        int from = sqlite3_column_type(stmt, 5) == SQLITE_NULL ? -1 : sqlite3_column_int(stmt, 5);
        rc = write_label(book, concept, item, to, (const char *)sqlite3_column_text(stmt, 2),
                         (const char *)sqlite3_column_text(stmt, 3),
                         sqlite3_column_int64(stmt, 4), err);
        if (rc == 0 && changes) {
            /* every key or none: a change listed with holes is wrong, and an item that
             * could not be attached is ours to free */
            cJSON *c = cJSON_CreateObject();
            cJSON *label = to < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(to);
            cJSON *previous = from < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(from);
            int ok = c && label && previous && cJSON_AddStringToObject(c, "id", item);
            if (ok && (ok = cJSON_AddItemToObject(c, "label", label)))
                label = NULL;
            if (ok && (ok = cJSON_AddItemToObject(c, "previous", previous)))
                previous = NULL;
            if (ok && (ok = cJSON_AddItemToArray(changes, c)))
                c = NULL;
            cJSON_Delete(c);
            cJSON_Delete(label);
            cJSON_Delete(previous);
            if (!ok)
                rc = vdx_fail_oom(err, "listing the changes of label action %lld",
                                  (long long)action);
        }
        (*n)++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = book_fail(book, err, "reading label events");
    sqlite3_finalize(stmt);
    if (rc != 0)
        return rc;
    stmt = book_prepare(book, "UPDATE label_events SET undone = ?3 WHERE concept = ?1 AND action = ?2",
                      err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_int64(stmt, 2, action);
    sqlite3_bind_int(stmt, 3, !redo);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        rc = book_fail(book, err, "marking a label action");
    sqlite3_finalize(stmt);
    return rc;
}

static int undo_or_redo(vdx_concepts *book, const char *name, int redo, cJSON **result,
                        vdx_error *err)
{
    if (result)
        *result = NULL;
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    cJSON *out = cJSON_CreateObject(), *changes = cJSON_CreateArray();
    int64_t action = 0;
    int n = 0, rc = book_begin_write(book, err);
    if (rc == 0 && (rc = concept_find(book, name, &rec, err)) == 0 &&
        (rc = pick_action(book, rec.id, redo, &action, err)) == 0) {
        if (action == 0)
            rc = vdx_fail_kind(err, VDX_ERR_CONFLICT, "nothing to %s in concept '%s'", redo ? "redo" : "undo", name);
        else
            rc = label_action_replay(book, rec.id, action, redo, changes, &n, err);
        if (rc == 0)
            rc = book_touch(book, rec.id, err);
    }
    rc = book_end_write(book, rc, err);
    if (rc == 0) {
        int ok = out && cJSON_AddStringToObject(out, redo ? "redone" : "undone", "labels") &&
                 cJSON_AddNumberToObject(out, "action", (double)action) &&
                 cJSON_AddNumberToObject(out, redo ? "labels_redone" : "labels_reverted", n);
        if (ok && (ok = changes && cJSON_AddItemToObject(out, "changes", changes)))
            changes = NULL; /* out owns it */
        rc = ok ? add_counts(book, &rec, out, err)
                : vdx_fail_oom(err, "describing the %s in concept '%s' (it is recorded)",
                               redo ? "redo" : "undo", name);
    }
    if (rc == 0 && result) {
        *result = out;
        out = NULL;
    }
    cJSON_Delete(out);
    cJSON_Delete(changes);
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}

int vdx_concept_undo(vdx_concepts *book, const char *name, cJSON **result, vdx_error *err)
{
    return undo_or_redo(book, name, 0, result, err);
}

int vdx_concept_redo(vdx_concepts *book, const char *name, cJSON **result, vdx_error *err)
{
    return undo_or_redo(book, name, 1, result, err);
}

int vdx_concept_history(vdx_concepts *book, const char *name, int limit, cJSON **result,
                        vdx_error *err)
{
    *result = NULL;
    if (limit <= 0)
        limit = 100;
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    sqlite3_stmt *stmt = NULL;
    int rc = concept_find(book, name, &rec, err), step = SQLITE_DONE;
    if (rc == 0 && !(stmt = book_prepare(
                         book,
                         "SELECT action, seq, round, item, new_label, old_label, time, undone"
                         " FROM label_events WHERE concept = ?1 AND action IN (SELECT DISTINCT"
                         " action FROM label_events WHERE concept = ?1 ORDER BY action DESC"
                         " LIMIT ?2) ORDER BY action DESC, seq",
                         err)))
        rc = -1;
    cJSON *out = cJSON_CreateObject(), *actions = cJSON_AddArrayToObject(out, "actions");
    cJSON *current = NULL, *changes = NULL;
    int64_t current_action = -1, can_undo = 0, can_redo = 0;
    if (stmt) {
        sqlite3_bind_int64(stmt, 1, rec.id);
        sqlite3_bind_int(stmt, 2, limit);
        while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
            int64_t action = sqlite3_column_int64(stmt, 0);
            int undone = sqlite3_column_int(stmt, 7);
            if (action != current_action) {
                current_action = action;
                current = cJSON_CreateObject();
                cJSON_AddNumberToObject(current, "action", (double)action);
                cJSON_AddStringToObject(current, "time", (const char *)sqlite3_column_text(stmt, 6));
                cJSON_AddNumberToObject(current, "round", sqlite3_column_int(stmt, 2));
                cJSON_AddBoolToObject(current, "undone", undone);
                changes = cJSON_AddArrayToObject(current, "changes");
                cJSON_AddItemToArray(actions, current);
                can_undo |= !undone;
                can_redo |= undone;
            }
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "id", (const char *)sqlite3_column_text(stmt, 3));
            for (int col = 4; col <= 5; col++)
                cJSON_AddItemToObject(c, col == 4 ? "label" : "previous",
                                      sqlite3_column_type(stmt, col) == SQLITE_NULL
                                          ? cJSON_CreateNull()
                                          : cJSON_CreateNumber(sqlite3_column_int(stmt, col)));
            cJSON_AddItemToArray(changes, c);
        }
        sqlite3_finalize(stmt);
        if (step != SQLITE_DONE)
            rc = book_fail(book, err, "reading the label history");
    }
    if (rc == 0) {
        cJSON_AddBoolToObject(out, "can_undo", can_undo);
        cJSON_AddBoolToObject(out, "can_redo", can_redo);
        cJSON_AddNumberToObject(out, "rounds", rec.rounds);
        *result = out;
    } else {
        cJSON_Delete(out);
    }
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}

int vdx_concept_revert_action(vdx_concepts *book, const char *name, int64_t action,
                              cJSON **result, vdx_error *err)
{
    if (result)
        *result = NULL;
    /* the items of the action, with the label each had before it */
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    sqlite3_stmt *stmt = NULL;
    size_t n = 0, cap = 0;
    vdx_label_change *changes = NULL;
    char **ids = NULL;
    int rc = concept_find(book, name, &rec, err), step = SQLITE_DONE;
    if (rc == 0 && !(stmt = book_prepare(book,
                                       "SELECT item, old_label, undone FROM label_events"
                                       " WHERE concept = ?1 AND action = ?2 ORDER BY seq",
                                       err)))
        rc = -1;
    int undone = 0;
    if (stmt) {
        sqlite3_bind_int64(stmt, 1, rec.id);
        sqlite3_bind_int64(stmt, 2, action);
        while ((step = sqlite3_step(stmt)) == SQLITE_ROW && rc == 0) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                vdx_label_change *c = realloc(changes, cap * sizeof *c);
                char **i = realloc(ids, cap * sizeof *i);
                if (c)
                    changes = c;
                if (i)
                    ids = i;
                if (!c || !i) {
                    rc = vdx_fail(err, "out of memory");
                    break;
                }
            }
            ids[n] = book_dup_text(sqlite3_column_text(stmt, 0));
            changes[n].id = ids[n];
            changes[n].label = sqlite3_column_type(stmt, 1) == SQLITE_NULL
                                   ? VDX_LABEL_CLEAR
                                   : sqlite3_column_int(stmt, 1);
            undone = sqlite3_column_int(stmt, 2);
            n++;
        }
        sqlite3_finalize(stmt);
        if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
            rc = book_fail(book, err, "reading a label action");
    }
    if (rc == 0 && n == 0)
        rc = vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "concept '%s' has no label action %lld", name, (long long)action);
    else if (rc == 0 && undone)
        rc = vdx_fail_kind(err, VDX_ERR_CONFLICT, "label action %lld of concept '%s' is undone already (redo brings it "
                           "back)", (long long)action, name);
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    /* one new action (so that it can be undone in turn) */
    if (rc == 0)
        rc = vdx_concept_label(book, name, changes, n, result, err);
    if (rc == 0 && result)
        cJSON_AddNumberToObject(*result, "reverted_action", (double)action);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(changes);
    return rc;
}
