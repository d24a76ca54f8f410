/* Error codes, their names and sentences, and the version functions. */
#include "testutil.h"

#include <limits.h>
#include <string.h>

TestSuite(errors, .fini = tu_check_leaks, .timeout = 10);

struct code {
	int value;
	const char *name;
	const char *sentence;
};

/* Built from the header's own list, so every listed code is checked. */
static const struct code codes[] = {
#define XX(name, value, msg) { DSKVS_##name, "DSKVS_" #name, msg },
	DSKVS_ERRNO_MAP(XX)
#undef XX
};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

Test(errors, every_documented_code_is_in_the_list)
{
	/* The list the checks below iterate over must hold every code the
	 * contract names; a code dropped from DSKVS_ERRNO_MAP fails here. */
	const int want[] = { DSKVS_NOTFOUND, DSKVS_EINVAL,    DSKVS_EBADKEY,
		             DSKVS_ETOOBIG,  DSKVS_ERANGE,    DSKVS_ENOMEM,
		             DSKVS_EBUSY,    DSKVS_EPATH,     DSKVS_EIO,
		             DSKVS_ECORRUPT, DSKVS_EVERSION,  DSKVS_ETIMEDOUT,
		             DSKVS_EEXIST,   DSKVS_ECONFLICT, DSKVS_EBATCH };
	cr_assert_eq(NCODES, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int found = 0;
		for (size_t j = 0; j < NCODES; j++)
			found += codes[j].value == want[i];
		cr_assert_eq(found, 1, "code %d listed %d times", want[i],
		             found);
	}
	cr_assert_eq(DSKVS_OK, 0);
}

Test(errors, codes_are_negative_and_outside_errno_range)
{
	for (size_t i = 0; i < NCODES; i++) {
		cr_assert_lt(codes[i].value, 0, "%s", codes[i].name);
		/* Linux -errno values are -1 .. -4095 (MAX_ERRNO). */
		cr_assert(codes[i].value < -4095,
		          "%s = %d collides with -errno", codes[i].name,
		          codes[i].value);
		cr_assert(codes[i].value >= -31999 && codes[i].value <= -31000,
		          "%s = %d outside the documented range", codes[i].name,
		          codes[i].value);
	}
}

Test(errors, codes_are_distinct)
{
	for (size_t i = 0; i < NCODES; i++)
		for (size_t j = i + 1; j < NCODES; j++)
			cr_assert_neq(codes[i].value, codes[j].value,
			              "%s == %s", codes[i].name, codes[j].name);
}

Test(errors, strerror_gives_each_code_its_sentence)
{
	for (size_t i = 0; i < NCODES; i++) {
		const char *s = dskvs_strerror(codes[i].value);
		cr_assert_not_null(s, "%s", codes[i].name);
		cr_assert_str_eq(s, codes[i].sentence, "%s", codes[i].name);
		cr_assert_str_neq(s, "unknown error", "%s", codes[i].name);
	}
}

Test(errors, strerror_sentences_are_distinct)
{
	for (size_t i = 0; i < NCODES; i++)
		for (size_t j = i + 1; j < NCODES; j++)
			cr_assert_str_neq(dskvs_strerror(codes[i].value),
			                  dskvs_strerror(codes[j].value));
}

static const int unknown[] = {
	1,      -1,     -2,     -4095, -30999,  -31000,
	-31015, -31999, -32000, 12345, INT_MIN, INT_MAX
};

Test(errors, strerror_of_unknown_codes)
{
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		const char *s = dskvs_strerror(unknown[i]);
		cr_assert_not_null(s, "code %d", unknown[i]);
		cr_assert_str_eq(s, "unknown error", "code %d", unknown[i]);
	}
}

Test(errors, strerror_of_ok_is_a_string)
{
	const char *s = dskvs_strerror(DSKVS_OK);

	cr_assert_not_null(s);
	cr_assert_gt(strlen(s), 0);
}

Test(errors, err_name_of_each_code)
{
	for (size_t i = 0; i < NCODES; i++) {
		const char *n = dskvs_err_name(codes[i].value);
		cr_assert_not_null(n);
		cr_assert_str_eq(n, codes[i].name);
	}
}

Test(errors, err_name_of_unknown_codes)
{
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		const char *n = dskvs_err_name(unknown[i]);
		cr_assert_not_null(n, "code %d", unknown[i]);
		cr_assert_str_eq(n, "DSKVS_UNKNOWN", "code %d", unknown[i]);
	}
}

Test(errors, version_matches_header)
{
	cr_assert_eq(dskvs_version(), DSKVS_VERSION_HEX);
	cr_assert_eq(DSKVS_VERSION_HEX, 0x010200);
	cr_assert_not_null(dskvs_version_string());
	cr_assert_str_eq(dskvs_version_string(), DSKVS_VERSION_STRING);
}

Test(errors, errmsg_is_never_null)
{
	cr_assert_not_null(dskvs_errmsg(NULL));
}
