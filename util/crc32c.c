/*
 * crc32c: the CPU's CRC32 instruction (x86-64 with SSE4.2) where there is
 * one, else slice-by-8 in software (polynomial 0x82F63B78, reflected). The
 * choice and the software tables are made once, on first use; the first
 * call is not thread-safe, so quorumd calls crc32c() once at start-up.
 */
#include "crc32c.h"

#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC32C_HW 1
#endif

static uint32_t table[8][256];
static bool ready, hw;

static void build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
#ifdef CRC32C_HW
	__builtin_cpu_init();
	hw = __builtin_cpu_supports("sse4.2");
#endif
	ready = true;
}

#ifdef CRC32C_HW
/* The same update as the tables', eight bytes per instruction. */
__attribute__((target("sse4.2"))) static uint32_t update_hw(uint32_t crc, const uint8_t *p,
							      size_t len)
{
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)c;
	while (len--)
		crc = _mm_crc32_u8(crc, *p++);
	return crc;
}
#endif

static uint32_t update_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		      table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
		      table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (!ready)
		build();
#ifdef CRC32C_HW
	if (hw)
		return ~update_hw(~crc, buf, len);
#endif
	return ~update_sw(~crc, buf, len);
}

uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
	if (!ready)
		build();
	return ~update_sw(~crc, buf, len);
}
