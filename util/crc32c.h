/*
 * crc32c: the Castagnoli CRC used to check every on-disk record.
 * crc32c(0, buf, n) starts a checksum; pass the previous value to continue.
 */
#ifndef QUORUM_CRC32C_H
#define QUORUM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* The same, always in software (crc32c() uses the CPU's instruction where
 * there is one): for tests of both. */
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif
