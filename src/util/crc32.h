/*
 * crc32.h - CRC-32C (Castagnoli), to tell a whole spool record from a torn
 * one after a crash.  Not a security checksum.
 */
#ifndef POSTERN_UTIL_CRC32_H
#define POSTERN_UTIL_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over p[0..len); start with crc = 0. */
uint32_t crc32c(uint32_t crc, const void *p, size_t len);

#endif
