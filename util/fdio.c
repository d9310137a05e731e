/* fdio: see fdio.h. */
#include "fdio.h"

#include <errno.h>
#include <unistd.h>

int fd_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* read() from where the descriptor is (off < 0), or pread() at off. */
static int read_all(int fd, void *buf, size_t n, off_t off)
{
	char *p = buf;
	while (n > 0) {
		ssize_t k = off < 0 ? read(fd, p, n) : pread(fd, p, n, off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EPIPE;
		p += k;
		n -= (size_t)k;
		if (off >= 0)
			off += k;
	}
	return 0;
}

int fd_read_all(int fd, void *buf, size_t n)
{
	return read_all(fd, buf, n, -1);
}

int fd_pread_all(int fd, void *buf, size_t n, off_t off)
{
	return off < 0 ? -EINVAL : read_all(fd, buf, n, off);
}
