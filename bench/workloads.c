/*
 * dskvs-bench: the registry of workloads, in the order --help lists them
 * and the bench runs them. A new workload is a wl_*.c file and a line here.
 */
#include "workload.h"

extern const struct bench_workload wl_memory, wl_fillseq, wl_overwrite,
    wl_readrandom, wl_readmissing, wl_readwhilewriting, wl_deleterandom,
    wl_getall, wl_ycsb_a, wl_ycsb_b, wl_ycsb_c, wl_ycsb_d, wl_ycsb_f,
    wl_ycsb_a_uni, wl_ycsb_b_uni, wl_ycsb_c_uni, wl_ycsb_d_uni, wl_ycsb_f_uni,
    wl_durable, wl_janitor, wl_go_original, wl_recovery, wl_churn_members,
    wl_churn_colls;

const struct bench_workload *const bench_workloads[] = {
	&wl_memory,
	&wl_fillseq,
	&wl_fillrandom,
	&wl_overwrite,
	&wl_readrandom,
	&wl_readmissing,
	&wl_readwhilewriting,
	&wl_deleterandom,
	&wl_getall,
	&wl_ycsb_a,
	&wl_ycsb_b,
	&wl_ycsb_c,
	&wl_ycsb_d,
	&wl_ycsb_f,
	&wl_ycsb_a_uni,
	&wl_ycsb_b_uni,
	&wl_ycsb_c_uni,
	&wl_ycsb_d_uni,
	&wl_ycsb_f_uni,
	&wl_durable,
	&wl_janitor,
	&wl_go_original,
	&wl_recovery,
	&wl_churn_members,
	&wl_churn_colls, /* wl_churn.c: the two cases */
	&wl_incr_update,
	&wl_incr_mutex,
	&wl_incr_hot_update,
	&wl_incr_hot_mutex,
	&wl_lag, /* wl_lag.c: one row per rate */
	&wl_batch10,
	&wl_batch10_single,
	&wl_batch100,
	&wl_batch100_single,
	&wl_backup, /* wl_backup.c: dskvs only */
};

const size_t nworkloads = sizeof(bench_workloads) / sizeof(bench_workloads[0]);

/* The workload's place in the registry (it seeds the workload's streams). */
size_t workload_index(const struct bench_workload *w)
{
	size_t i = 0;

	while (i < nworkloads && bench_workloads[i] != w)
		i++;
	return i;
}
