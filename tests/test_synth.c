/* The synthetic-data generator (tests/support/synth.c): the geometry it promises is the
 * geometry it makes (measured cosines against the targets), it is deterministic per item
 * and seed, its vectors are unit length, and bad parameters are refused with a message. */
#include "support/synth.h"
#include "test.h"

static double dotf(const float *x, const float *y, int dim)
{
    double s = 0;
    for (int i = 0; i < dim; i++)
        s += (double)x[i] * y[i];
    return s;
}

TEST(defaults_have_clip_geometry)
{
    synth_params p;
    synth_defaults(&p);
    char err[256];
    synth *s = synth_new(&p, err, sizeof err);
    REQUIRE(s, "%s", err);
    synth_stats st;
    synth_measure(s, 2000, &st);
    /* 2000 pairs at dim 512: a mean cosine's standard error is about 0.044/√2000 ≈ 0.001,
     * and the centres' own random overlaps add up to ±0.01; 0.02 is well outside both. */
    CHECK(fabs(st.image_image - 0.5) < 0.02, "image-image %.4f", st.image_image);
    CHECK(fabs(st.same_cluster - 0.75) < 0.02, "same cluster %.4f", st.same_cluster);
    CHECK(fabs(st.text_text - 0.6) < 0.02, "text-text %.4f", st.text_text);
    CHECK(fabs(st.matched - 0.3) < 0.02, "matched %.4f", st.matched);
    CHECK(fabs(st.cross - 0.18) < 0.02, "cross %.4f", st.cross);
    /* the gap: |at·u + ag·g − a·u| with a = √0.5, at = 0.18/a, ag = √(0.6 − at²) */
    double a = sqrt(0.5), at = 0.18 / a, ag = sqrt(0.6 - at * at);
    double gap = sqrt((at - a) * (at - a) + ag * ag);
    CHECK(fabs(st.gap_norm - gap) < 0.03, "gap %.4f, expected %.4f", st.gap_norm, gap);
    synth_free(s);
}

TEST(other_targets_are_met)
{
    synth_params p;
    synth_defaults(&p);
    p.dim = 256;
    p.clusters = 50;
    p.image_cos = 0.4;
    p.cluster_cos = 0.8;
    p.text_cos = 0.7;
    p.match_cos = 0.35;
    p.cross_cos = 0.15;
    p.skew = 0;
    char err[256];
    synth *s = synth_new(&p, err, sizeof err);
    REQUIRE(s, "%s", err);
    synth_stats st;
    synth_measure(s, 2000, &st);
    CHECK(fabs(st.image_image - 0.4) < 0.03, "image-image %.4f", st.image_image);
    CHECK(fabs(st.same_cluster - 0.8) < 0.03, "same cluster %.4f", st.same_cluster);
    CHECK(fabs(st.text_text - 0.7) < 0.03, "text-text %.4f", st.text_text);
    CHECK(fabs(st.matched - 0.35) < 0.03, "matched %.4f", st.matched);
    CHECK(fabs(st.cross - 0.15) < 0.03, "cross %.4f", st.cross);
    synth_free(s);
}

TEST(uniform_vectors_are_spread)
{
    synth_params p;
    synth_defaults(&p);
    p.uniform = 1;
    char err[256];
    synth *s = synth_new(&p, err, sizeof err);
    REQUIRE(s, "%s", err);
    synth_stats st;
    synth_measure(s, 2000, &st);
    CHECK(fabs(st.image_image) < 0.01, "image-image %.4f", st.image_image);
    CHECK(fabs(st.matched) < 0.01, "matched %.4f", st.matched);
    CHECK(fabs(st.text_text) < 0.01, "text-text %.4f", st.text_text);
    synth_free(s);
}

TEST(deterministic_unit_vectors)
{
    synth_params p;
    synth_defaults(&p);
    p.dim = 64;
    p.clusters = 10;
    char err[256];
    synth *s = synth_new(&p, err, sizeof err), *s2 = synth_new(&p, err, sizeof err);
    REQUIRE(s && s2, "%s", err);
    float many[64 * 8], one[64], t1[64], t2[64];
    synth_images(s, 100, 8, many);
    synth_image(s2, 105, one);
    CHECK(!memcmp(one, many + 5 * 64, sizeof one), "item 105 differs between calls");
    for (int i = 0; i < 8; i++)
        CHECK(fabs(dotf(many + i * 64, many + i * 64, 64) - 1) < 1e-5, "row %d not unit", i);
    synth_text_for_item(s, 7, 0, t1);
    synth_text_for_item(s2, 7, 0, t2);
    CHECK(!memcmp(t1, t2, sizeof t1), "caption differs between generators");
    synth_text_for_item(s, 7, 1, t2);
    CHECK(memcmp(t1, t2, sizeof t1) != 0, "variants 0 and 1 are the same caption");
    CHECK(fabs(dotf(t1, t1, 64) - 1) < 1e-5, "caption not unit");
    synth_text_for_cluster(s, 3, 0, t1);
    CHECK(fabs(dotf(t1, t1, 64) - 1) < 1e-5, "cluster prompt not unit");
    p.seed = 2;
    synth *s3 = synth_new(&p, err, sizeof err);
    REQUIRE(s3, "%s", err);
    synth_image(s3, 105, t2);
    CHECK(memcmp(one, t2, sizeof one) != 0, "seed 2 gives seed 1's vector");
    /* a cluster prompt is nearer its own cluster's images than another cluster's */
    synth_text_for_cluster(s, synth_cluster_of(s, 105), 0, t1);
    int other = (synth_cluster_of(s, 105) + 1) % 10;
    synth_text_for_cluster(s, other, 0, t2);
    CHECK(dotf(t1, one, 64) > dotf(t2, one, 64), "own cluster %.3f <= other %.3f",
          dotf(t1, one, 64), dotf(t2, one, 64));
    synth_free(s);
    synth_free(s2);
    synth_free(s3);
}

TEST(skew_orders_cluster_sizes)
{
    synth_params p;
    synth_defaults(&p);
    p.dim = 32;
    p.clusters = 20;
    p.skew = 1;
    char err[256];
    synth *s = synth_new(&p, err, sizeof err);
    REQUIRE(s, "%s", err);
    int count[20] = { 0 };
    for (uint64_t i = 0; i < 20000; i++)
        count[synth_cluster_of(s, i)]++;
    /* weights 1/(k+1): cluster 0 holds 1/H(20) ≈ 28% of the items, cluster 19 ≈ 1.4% */
    CHECK(count[0] > 5000 && count[0] < 6300, "cluster 0 has %d", count[0]);
    CHECK(count[19] > 150 && count[19] < 420, "cluster 19 has %d", count[19]);
    synth_free(s);
}

TEST(flags_and_bad_parameters)
{
    synth_params p;
    synth_defaults(&p);
    char err[256];
    CHECK(synth_parse_flag(&p, "--synth-clusters=77", err, sizeof err) == 1, "clusters");
    CHECK(p.clusters == 77, "clusters %d", p.clusters);
    CHECK(synth_parse_flag(&p, "--synth-match-cos=0.25", err, sizeof err) == 1, "match");
    CHECK(p.match_cos == 0.25, "match %g", p.match_cos);
    CHECK(synth_parse_flag(&p, "--synth-seed=9", err, sizeof err) == 1 && p.seed == 9, "seed");
    CHECK(synth_parse_flag(&p, "--synth-uniform=1", err, sizeof err) == 1 && p.uniform, "uniform");
    CHECK(synth_parse_flag(&p, "--items=5", err, sizeof err) == 0, "not a synth flag");
    CHECK(synth_parse_flag(&p, "--synth-dim=abc", err, sizeof err) == -1, "bad dim accepted");
    CHECK(strstr(err, "--synth-dim=abc"), "message: %s", err);
    CHECK(synth_parse_flag(&p, "--synth-colour=1", err, sizeof err) == -1, "unknown accepted");
    CHECK(strstr(err, "unknown"), "message: %s", err);
    char help[2048];
    synth_flags_help(&p, help, sizeof help);
    CHECK(strstr(help, "--synth-clusters=77"), "help shows current values: %s", help);

    synth_defaults(&p);
    p.text_cos = 0.99; /* leaves no room for the caption's own semantic part */
    synth *s = synth_new(&p, err, sizeof err);
    CHECK(!s && strstr(err, "text-cos"), "unreachable text-cos accepted: %s", err);
    synth_defaults(&p);
    p.cluster_cos = 0.3; /* below image-cos */
    s = synth_new(&p, err, sizeof err);
    CHECK(!s && strstr(err, "cluster-cos"), "cluster-cos < image-cos accepted: %s", err);
    synth_defaults(&p);
    p.match_cos = 0.1;
    s = synth_new(&p, err, sizeof err);
    CHECK(!s && strstr(err, "match-cos"), "match < cross accepted: %s", err);
}

int main(void)
{
    RUN(defaults_have_clip_geometry);
    RUN(other_targets_are_met);
    RUN(uniform_vectors_are_spread);
    RUN(deterministic_unit_vectors);
    RUN(skew_orders_cluster_sizes);
    RUN(flags_and_bad_parameters);
    return test_summary("synth");
}
