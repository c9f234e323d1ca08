/* The embedded page files (see static.c). */
#ifndef VDX_SERVER_STATIC_H
#define VDX_SERVER_STATIC_H

#include "server/http.h"

/* Answers GET/HEAD of "/" and "/NAME" from the embedded files; 404 otherwise. */
void static_handle(http_request *req);

#endif
