#ifndef CPERCH_THREADS_H
#define CPERCH_THREADS_H
// pthreads and C11 atomics for PerchEngine's ThreadPool. Everything is static inline so the
// header serves the host build and the Embedded Swift cross build alike. Swift sees the pool's
// synchronization state only as an opaque pointer (`perch_sync_*`).
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sched.h>

/// A thread's entry point: a Swift closure without captures converts to this type.
typedef void *(*perch_thread_fn)(void *);

/// Starts a thread running `fn(arg)`. Returns an opaque handle for `perch_thread_join`, or NULL.
static inline void *perch_thread_start(perch_thread_fn fn, void *arg) {
    pthread_t *t = (pthread_t *)malloc(sizeof(pthread_t));
    if (!t) return NULL;
    if (pthread_create(t, NULL, fn, arg) != 0) { free(t); return NULL; }
    return t;
}

/// Waits for the thread to end and frees its handle.
static inline void perch_thread_join(void *handle) {
    if (!handle) return;
    pthread_join(*(pthread_t *)handle, NULL);
    free(handle);
}

/// A hint to the CPU that this thread is spinning.
static inline void perch_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

/// Dispatch state shared by a pool's workers: a generation number that announces a new job, a
/// chunk counter the participants take chunks from, and a count of workers that finished.
typedef struct {
    _Atomic long generation;
    _Atomic long next;
    _Atomic long finished;
    _Atomic int stop;
    _Atomic long registered;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
} perch_sync;

static inline void *perch_sync_create(void) {
    perch_sync *s = (perch_sync *)calloc(1, sizeof(perch_sync));
    if (!s) return NULL;
    atomic_init(&s->generation, 0);
    atomic_init(&s->next, 0);
    atomic_init(&s->finished, 0);
    atomic_init(&s->stop, 0);
    atomic_init(&s->registered, 0);
    pthread_mutex_init(&s->mutex, NULL);
    pthread_cond_init(&s->wake, NULL);
    return s;
}

static inline void perch_sync_destroy(void *p) {
    perch_sync *s = (perch_sync *)p;
    if (!s) return;
    pthread_mutex_destroy(&s->mutex);
    pthread_cond_destroy(&s->wake);
    free(s);
}

/// Announces a new job (the caller has stored the job first) and wakes sleeping workers.
/// Returns the new generation.
static inline long perch_sync_publish(void *p) {
    perch_sync *s = (perch_sync *)p;
    atomic_store(&s->next, 0);
    atomic_store(&s->finished, 0);
    long g = atomic_fetch_add(&s->generation, 1) + 1;
    pthread_mutex_lock(&s->mutex);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mutex);
    return g;
}

/// Asks the workers to exit and wakes them.
static inline void perch_sync_stop(void *p) {
    perch_sync *s = (perch_sync *)p;
    atomic_store(&s->stop, 1);
    pthread_mutex_lock(&s->mutex);
    atomic_fetch_add(&s->generation, 1);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mutex);
}

/// Worker side: waits until the generation differs from `seen` (spinning `spins` times before
/// sleeping on the condition variable). Returns the new generation, or -1 when asked to stop.
static inline long perch_sync_wait(void *p, long seen, int spins) {
    perch_sync *s = (perch_sync *)p;
    for (int i = 0; i < spins; i++) {
        long g = atomic_load_explicit(&s->generation, memory_order_acquire);
        if (g != seen) return atomic_load(&s->stop) ? -1 : g;
        perch_cpu_relax();
    }
    pthread_mutex_lock(&s->mutex);
    long g;
    while ((g = atomic_load(&s->generation)) == seen && !atomic_load(&s->stop)) {
        pthread_cond_wait(&s->wake, &s->mutex);
    }
    pthread_mutex_unlock(&s->mutex);
    return atomic_load(&s->stop) ? -1 : g;
}

/// A worker's slot number (1, 2, …; the caller's is 0), taken once when the worker starts.
static inline long perch_sync_register(void *p) {
    return atomic_fetch_add(&((perch_sync *)p)->registered, 1) + 1;
}

/// Takes the next chunk index of the current job.
static inline long perch_sync_take(void *p) {
    return atomic_fetch_add_explicit(&((perch_sync *)p)->next, 1, memory_order_relaxed);
}

/// A worker reports that it found no more chunks (its writes are released to the caller).
static inline void perch_sync_finish(void *p) {
    atomic_fetch_add_explicit(&((perch_sync *)p)->finished, 1, memory_order_release);
}

/// Caller side: spins until `workers` workers have finished the current job.
static inline void perch_sync_join(void *p, long workers) {
    perch_sync *s = (perch_sync *)p;
    int n = 0;
    while (atomic_load_explicit(&s->finished, memory_order_acquire) < workers) {
        if (++n < 4096) perch_cpu_relax(); else sched_yield();
    }
}

#endif
