/* Uses the installed dskvs: version, open, put, get, reopen, close. Exits 0
 * when everything matches. */
#define _GNU_SOURCE
#include <dskvs.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, int rc)
{
	fprintf(stderr, "downstream: %s: %s (%s)\n", what, dskvs_err_name(rc),
	        dskvs_errmsg(NULL));
	return 1;
}

static int run(const char *dir)
{
	dskvs *s = NULL;
	char buf[16];
	size_t len = 0;
	int rc;

	if (dskvs_version() != DSKVS_VERSION_HEX ||
	    strcmp(dskvs_version_string(), DSKVS_VERSION_STRING) != 0) {
		fprintf(stderr, "downstream: header %s, library %s\n",
		        DSKVS_VERSION_STRING, dskvs_version_string());
		return 1;
	}
	if ((rc = dskvs_open(dir, NULL, &s)) != DSKVS_OK)
		return fail("open", rc);
	if ((rc = dskvs_put(s, "artist/daft_punk", "discovery", 9, NULL,
	                    NULL)) != DSKVS_OK)
		return fail("put", rc);
	if ((rc = dskvs_close(s)) != DSKVS_OK)
		return fail("close", rc);
	if ((rc = dskvs_open(dir, NULL, &s)) != DSKVS_OK)
		return fail("reopen", rc);
	rc = dskvs_get(s, "artist/daft_punk", buf, sizeof(buf), &len);
	if (rc != DSKVS_OK)
		return fail("get", rc);
	if (len != 9 || memcmp(buf, "discovery", 9) != 0) {
		fprintf(stderr, "downstream: wrong value\n");
		return 1;
	}
	if ((rc = dskvs_close(s)) != DSKVS_OK)
		return fail("close", rc);
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/dskvs-downstream-store-XXXXXX";

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	int rc = run(dir);
	/* The store's files, then its directory. */
	static const char *const files[] = { "dskvs.log", "dskvs.lock",
		                             "dskvs.log.tmp" };
	char path[sizeof(dir) + 32];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	if (rmdir(dir) != 0) {
		perror("rmdir: the store left unknown files");
		rc = 1;
	}
	if (rc == 0)
		printf("downstream: ok (dskvs %s)\n", dskvs_version_string());
	return rc;
}
