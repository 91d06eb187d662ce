#ifndef SLUICE_CGLIBCEXTRAS_SHIM_H
#define SLUICE_CGLIBCEXTRAS_SHIM_H

// What the Glibc module does not import: glibc's malloc tuning (mallopt), and the Linux calls glibc declares only with
// _GNU_SOURCE, which that module is not built with.
#include <malloc.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __linux__
// fcntl.h, _GNU_SOURCE: start (flags 2, SYNC_FILE_RANGE_WRITE) or wait for write-back of a file's range.
extern int sync_file_range(int fd, __off64_t offset, __off64_t nbytes, unsigned int flags);
// pthread.h, _GNU_SOURCE: a thread's name as top -H, perf and gdb show it (15 bytes at most).
extern int pthread_setname_np(pthread_t thread, const char *name);
extern int pthread_getname_np(pthread_t thread, char *name, size_t length);
// unistd.h, _GNU_SOURCE: a pipe whose ends are close-on-exec (and non-blocking) from the start, with no window in
// which another thread's fork and exec could inherit them.
extern int pipe2(int ends[2], int flags);
// sys/socket.h, _GNU_SOURCE: accept, with the connection's flags (SOCK_CLOEXEC) set from the start.
extern int accept4(int socket, struct sockaddr *address, socklen_t *length, int flags);
// unistd.h, _GNU_SOURCE: lseek's whence for the next data of a sparse file (past a hole).
#define SLUICE_SEEK_DATA 3
#endif

#endif
