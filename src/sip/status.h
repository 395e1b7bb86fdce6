/* status.h: the catalogue of SIP response codes: reason phrase, class, mandated headers, and what each means in English and Chinese. */
#ifndef SIPD_SIP_STATUS_H
#define SIPD_SIP_STATUS_H

#include <stddef.h>
#include <stdio.h>

struct sip_status {
	unsigned short code;
	const char *reason;  /* the RFC's reason phrase, e.g. "Request Terminated" */
	const char *rfc;     /* where it is defined, e.g. "RFC 3261 21.4.25" */
	const char *headers; /* headers it must or should carry, e.g. "Retry-After", or "" */
	const char *en;      /* when it is sent and what a receiver does, in English (ours) */
	const char *zh;      /* the same in Chinese (ours) */
};

/* The entry for exactly this code, or NULL. */
const struct sip_status *sip_status_find(unsigned code);
/* The entry, or for an unknown code the x00 of its class, 183 for a 1xx (RFC 3261 8.1.3.2); NULL outside
 * 100..699. */
const struct sip_status *sip_status_lookup(unsigned code);
/* Reason phrase for a code (the class's x00 phrase if unknown); "Unknown" outside 100..699. */
const char *sip_status_reason(unsigned code);
/* 1..6, or 0 outside 100..699. */
unsigned sip_status_class(unsigned code);
/* "Provisional", "Success", "Redirection", "Client Error", "Server Error", "Global Failure". */
const char *sip_status_class_name(unsigned code);
const struct sip_status *sip_status_all(size_t *n);
/* Prints the entry as `sipd --explain CODE` shows it; 0, or ENOENT for a code outside 100..699. */
int sip_status_explain(FILE *f, unsigned code);

#endif
