/*
 * prefault: fresh pages faulted in on another core, ahead of the thread
 * that will use them.
 *
 * A page the process touches for the first time is zeroed by the kernel
 * in the fault, on the touching thread. Under a hypervisor that backs a
 * guest's memory only when it is first used, that can be most of what a
 * big allocation costs (about 2 ms per 2 MiB huge page on the machines
 * bench/ runs on); the JVM's AlwaysPreTouch exists for the same reason. A
 * helper thread asks the kernel to populate the pages writable
 * (MADV_POPULATE_WRITE: the same zeroed pages the first write would get,
 * without writing), 2 MiB a call, lowest first. Nothing changes what
 * memory holds, so the helper may lose any race: a page the user reaches
 * first it faults itself, as without the helper. Two kinds of memory:
 *
 *   the heap   prefault_start(), while one thread fills the heap, as a big
 *              load does (a snapshot of a million nodes grows it by
 *              hundreds of MB, half of its load time in faults). Until
 *              prefault_stop() glibc's heap grows in big steps
 *              (M_TOP_PAD), and the helper follows the program break,
 *              just ahead of the filling thread. Where the heap is not
 *              glibc's brk heap (a sanitizer's allocator, valgrind's), the
 *              helper finds nothing to do.
 *   a range    prefault_range(), a mapping of its own made before it is
 *              needed (a large hash index's doubled array, omap.c: tens of
 *              MB touched at random by the first inserts after the switch
 *              would cost the loop 80-160 ms at once).
 *
 * A kernel without MADV_POPULATE_WRITE (before 5.14) makes the helper give
 * up at once; the memory works as well without it.
 *
 * One more helper keeps the heap's huge pages: prefault_collapse_heap().
 * While a forked child shares the heap, each huge page the parent writes
 * to is split by the copy-on-write into 4 KiB mappings, and stays split
 * (khugepaged mends some 16 MB every 10 s). The next child's walk of the
 * tree then takes a fault per 4 KiB page instead of one per 2 MiB, which
 * under a hypervisor that shadows page tables costs about 4 us each: the
 * child's snapshot of a million nodes took 0.43 s, and 0.27 s once the
 * heap was mapped by huge pages again, half the CPU. So once a
 * child is gone, the helper maps the heap with huge pages again
 * (MADV_COLLAPSE, Linux 6.1), 2 MiB a call. It does so only for a heap
 * the kernel may back with huge pages (THPeligible: glibc asked for them,
 * see quorumd's main.c), and gives up at once on a kernel without it.
 */
#ifndef QUORUM_PREFAULT_H
#define QUORUM_PREFAULT_H

#include <stdbool.h>
#include <stddef.h>

struct prefault;

/* Starts the heap's helper for a fill of about `bytes` of heap, from the
 * thread that will fill it. NULL (and nothing started) when there is
 * nothing to gain: a small fill, no helper thread to be had. */
struct prefault *prefault_start(size_t bytes);

/* Starts a helper for [p, p + bytes), mapped and not yet used. NULL (and
 * nothing started) when p is NULL or no helper thread is to be had. */
struct prefault *prefault_range(void *p, size_t bytes);

/* Starts the helper that collapses the heap (brk) back into huge pages,
 * from its start to the program break. NULL (and nothing started) when no
 * helper thread is to be had. Stop it before the next fork, so that the
 * fork does not wait for a collapse under way. */
struct prefault *prefault_collapse_heap(void);

/* Whether the helper is through: all populated, or given up. p not NULL. */
bool prefault_done(const struct prefault *p);

/* Stops and joins the helper (before its range is unmapped). For the
 * heap's, also puts the heap's growth step back and gives the unused part
 * of the last step back to the kernel. p may be NULL. */
void prefault_stop(struct prefault *p);

/* For tests: the bytes the helper populated so far; a collapse's, the
 * bytes it left mapped by huge pages. */
size_t prefault_populated(const struct prefault *p);

#endif
