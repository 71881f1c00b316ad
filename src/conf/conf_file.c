#include "conf_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int conf_file_read(const char *path, char **textp, size_t *lenp)
{
	struct stat st;
	FILE *f = fopen(path, "rb");
	int err = 0;
	char *buf = NULL;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) != 0) {
		err = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		err = -EISDIR;
		goto out;
	}
	if ((unsigned long long)st.st_size > CONF_FILE_MAX) {
		err = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	size_t n = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		err = -EIO;
		goto out;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n)) {
		err = -EILSEQ;
		goto out;
	}
	*textp = buf;
	*lenp = n;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return err;
}

char *conf_file_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int conf_file_open(struct conf_file *cf, const char *path, conf_section_h *on_section,
                   void *arg)
{
	memset(cf, 0, sizeof(*cf));
	int err = conf_file_read(path, &cf->text, &cf->len);
	if (err)
		return err;
	/* A UTF-8 byte order mark, as some Windows editors write. */
	if (cf->len >= 3 && memcmp(cf->text, "\xef\xbb\xbf", 3) == 0)
		cf->pos = 3;
	cf->on_section = on_section;
	cf->arg = arg;
	return 0;
}

void conf_file_close(struct conf_file *cf)
{
	free(cf->text);
	cf->text = NULL;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static void problem(struct conf_file *cf, const char *msg)
{
	if (cf->dl)
		diag_add(cf->dl, DIAG_ERROR, cf->fname, cf->line, "%s", msg);
}

char *conf_file_reader(char *str, int num, void *stream)
{
	struct conf_file *cf = stream;

	if (cf->pos >= cf->len || num < 3)
		return NULL;
	const char *start = cf->text + cf->pos;
	const char *nl = memchr(start, '\n', cf->len - cf->pos);
	const char *end = nl ? nl : cf->text + cf->len;
	cf->pos = nl ? (size_t)(nl - cf->text) + 1 : cf->len;
	cf->line++;

	/* Leading white space would make inih read the line as a continuation of the
	 * previous value; strict files have no continuations. */
	while (start < end && is_space(*start))
		start++;
	while (end > start && is_space(end[-1]))
		end--;
	size_t len = (size_t)(end - start);

	if (len > (size_t)num - 2) {
		char msg[96];
		snprintf(msg, sizeof(msg), "line longer than %d characters", num - 2);
		problem(cf, msg);
		len = 0;
	} else if (len > 0 && *start == '[') {
		const char *close = memchr(start, ']', len);
		if (!close) {
			problem(cf, "a section header needs a closing ']'");
			len = 0;
		} else {
			char name[256];
			const char *a = start + 1, *b = close;
			while (a < b && is_space(*a))
				a++;
			while (b > a && is_space(b[-1]))
				b--;
			size_t nlen = (size_t)(b - a) < sizeof(name) - 1
			                  ? (size_t)(b - a)
			                  : sizeof(name) - 1;
			memcpy(name, a, nlen);
			name[nlen] = '\0';
			cf->any_section = 1;
			if (cf->on_section)
				cf->on_section(cf->arg, name, cf->line);
		}
	} else if (len > 0 && *start != ';' && *start != '#') {
		const char *eq = memchr(start, '=', len);
		const char *colon = memchr(start, ':', len);
		if (!eq || eq == start || (colon && colon < eq)) {
			problem(
			    cf,
			    "expected 'key = value', a [section] header or a comment");
			len = 0;
		}
	}
	memcpy(str, start, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}
