/* font5x7: a tiny built-in bitmap font (5x7 glyphs: digits, letters, common punctuation) to label plots. */
#ifndef PN_TOOLS_FONT5X7_H
#define PN_TOOLS_FONT5X7_H

#include <stdint.h>

/* Glyphs are 5 wide and 7 high above the baseline; g, j, p, q, y and ',' reach one row below it. */
enum { PN_FONT_W = 5, PN_FONT_H = 7, PN_FONT_ROWS = 8, PN_FONT_ADVANCE = 6 };

/* The PN_FONT_ROWS rows of `c`'s glyph, bit 4 = leftmost column; a character outside the table gets '?'. */
const uint8_t *pn_font_glyph(char c);
/* Width in pixels of `text` drawn at `scale` (each glyph 5 columns plus 1 of spacing, the last without). */
int pn_font_text_width(const char *text, int scale);
/* Draws `text` into an RGB image (w x h, 3 bytes a pixel) with its top-left corner at (x, y), each font
 * pixel a scale x scale square of `color`; pixels outside the image are clipped. Returns the number of
 * image pixels set. */
int64_t pn_font_draw(uint8_t *rgb, int w, int h, int x, int y, const char *text, int scale, const uint8_t color[3]);

#endif
