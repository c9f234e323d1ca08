/* The web page's files, embedded into the binary by scripts/embed-web.sh. */
#ifndef VDX_WEB_ASSETS_H
#define VDX_WEB_ASSETS_H

#include <stddef.h>

typedef struct vdx_web_asset {
    const char *path;           /* "/index.html" */
    const unsigned char *data;  /* NUL-terminated copy of the file */
    size_t size;
} vdx_web_asset;

extern const vdx_web_asset vdx_web_assets[]; /* ends with a {0} entry */

#endif
