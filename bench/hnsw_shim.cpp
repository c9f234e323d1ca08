// A thin C interface to Debian's hnswlib (header-only C++, libhnswlib-dev 0.6.2) so that
// bench_index.c can run it as the baseline on the same vectors in the same run. Inner
// product space on unit vectors: distance 1 - dot, like vdx's. hnswlib 0.6.2 has no
// search filter, so exclusions are applied with markDelete/unmarkDelete around a query
// (deleted points are still traversed but never returned).
#include <hnswlib/hnswlib.h>

#include <cstdint>
#include <cstdlib>

struct hnsw_shim {
    hnswlib::InnerProductSpace space;
    hnswlib::HierarchicalNSW<float> index;
    hnsw_shim(int dim, size_t max_elements, int m, int ef_construction)
        : space((size_t)dim), index(&space, max_elements, (size_t)m, (size_t)ef_construction) {}
};

extern "C" {

hnsw_shim *hnsw_shim_new(int dim, size_t max_elements, int m, int ef_construction)
{
    try {
        return new hnsw_shim(dim, max_elements, m, ef_construction);
    } catch (...) {
        return nullptr;
    }
}

void hnsw_shim_free(hnsw_shim *h) { delete h; }

int hnsw_shim_add(hnsw_shim *h, const float *v, size_t label)
{
    try {
        h->index.addPoint(v, label);
        return 0;
    } catch (...) {
        return -1;
    }
}

void hnsw_shim_set_ef(hnsw_shim *h, size_t ef) { h->index.setEf(ef); }

// Bytes hnswlib allocates for its graph and vectors (levels 0 and above).
size_t hnsw_shim_bytes(const hnsw_shim *h)
{
    size_t n = h->index.cur_element_count;
    size_t upper = 0;
    for (size_t i = 0; i < n; i++)
        upper += (size_t)h->index.element_levels_[i] * h->index.size_links_per_element_;
    return n * h->index.size_data_per_element_ + upper;
}

// The k nearest labels, nearest first; excluded labels are never returned. Returns the
// count, or -1.
int hnsw_shim_search(hnsw_shim *h, const float *q, int k, const size_t *exclude,
                     size_t n_exclude, size_t *labels, float *dists)
{
    try {
        for (size_t i = 0; i < n_exclude; i++)
            h->index.markDelete(exclude[i]);
        auto result = h->index.searchKnn(q, (size_t)k);
        for (size_t i = 0; i < n_exclude; i++)
            h->index.unmarkDelete(exclude[i]);
        int n = (int)result.size();
        for (int i = n - 1; i >= 0; i--) {
            labels[i] = result.top().second;
            dists[i] = result.top().first;
            result.pop();
        }
        return n;
    } catch (...) {
        return -1;
    }
}
}
