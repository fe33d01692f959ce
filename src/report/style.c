/* report/style.c -- the inline stylesheet: CSS custom properties from the brand, then fixed
 * rules.  Mobile first (nothing may scroll the page sideways at 375 px: images shrink, tables
 * scroll inside their own wrapper, long words and URLs wrap), and a print section.
 * Only validated "#rgb"/"#rrggbb" colours from the brand reach this text. */
#include <stdlib.h>

#include "report/internal.h"

static double channel(const char *hex, int i, bool short_form)
{
	char d[3] = {hex[short_form ? 1 + i : 1 + 2 * i], hex[short_form ? 1 + i : 2 + 2 * i], 0};
	double v = (double)strtol(d, NULL, 16) / 255.0;
	return v * v; /* gamma 2 instead of sRGB's curve: close enough to pick a text colour */
}

/* About WCAG's relative luminance of a validated colour. */
static double luminance(const char *hex)
{
	bool s = hex[4] == '\0';
	return 0.2126 * channel(hex, 0, s) + 0.7152 * channel(hex, 1, s) + 0.0722 * channel(hex, 2, s);
}

/* White or near-black, whichever reads better on the brand's primary colour. */
static const char *on_color(const char *bg)
{
	double l = luminance(bg);
	double white = 1.05 / (l + 0.05), black = (l + 0.05) / (0.0065 + 0.05);
	return white >= black ? "#ffffff" : "#111111";
}

static const char CSS[] =
	"*,*::before,*::after{box-sizing:border-box}\n"
	"html{-webkit-text-size-adjust:100%;text-size-adjust:100%}\n"
	"body{margin:0;background:var(--bg);color:var(--text);font-family:var(--font);"
	"font-size:1rem;line-height:1.55;overflow-wrap:anywhere}\n"
	".wrap{max-width:60rem;margin:0 auto;padding:0 1rem}\n"
	".masthead{background:var(--brand-primary);color:var(--on-primary)}\n"
	".masthead .wrap{display:flex;align-items:center;gap:.75rem;min-height:3.5rem;"
	"padding-top:.6rem;padding-bottom:.6rem}\n"
	".logo{display:block;max-height:2.5rem;max-width:40vw;width:auto;height:auto}\n"
	".brand-name{font-weight:700;font-size:1.1rem;min-width:0}\n"
	".kind{margin-left:auto;font-size:.85rem;opacity:.85;white-space:nowrap}\n"
	"main.wrap{padding-top:1.5rem;padding-bottom:2rem}\n"
	"h1{font-size:1.75rem;line-height:1.25;margin:0 0 1rem;color:var(--brand-primary)}\n"
	"h2{font-size:1.35rem;line-height:1.3;margin:2.25rem 0 .75rem;padding-bottom:.3rem;"
	"border-bottom:2px solid var(--border)}\n"
	"h3{font-size:1.12rem;margin:1.75rem 0 .5rem}\n"
	"h4,h5,h6{font-size:1rem;margin:1.25rem 0 .4rem}\n"
	"h2,h3,h4{scroll-margin-top:1rem}\n"
	"p,ul,ol,blockquote{margin:0 0 1rem}\n"
	"ul,ol{padding-left:1.5rem}\n"
	"li{margin:.2rem 0}\n"
	"li.task{list-style:none;margin-left:-1.25rem}\n"
	".box{display:inline-block;width:1.1em}\n"
	"a{color:var(--brand-accent)}\n"
	"blockquote{border-left:4px solid var(--border);margin-left:0;padding:.1rem 0 .1rem 1rem;"
	"color:var(--muted)}\n"
	"hr{border:0;border-top:1px solid var(--border);margin:2rem 0}\n"
	"code,pre{font-family:var(--mono);font-size:.88em}\n"
	"code{background:var(--surface);padding:.1em .3em;border-radius:4px}\n"
	"pre{background:var(--surface);border:1px solid var(--border);border-radius:6px;"
	"padding:.75rem 1rem;white-space:pre-wrap;overflow-wrap:anywhere}\n"
	"pre code{background:none;padding:0;font-size:1em}\n"
	".question{background:var(--surface);border-left:4px solid var(--brand-accent);"
	"padding:.75rem 1rem;margin:0 0 1.25rem;border-radius:0 6px 6px 0}\n"
	".question .q-label{display:block;font-size:.8rem;font-weight:700;letter-spacing:.04em;"
	"text-transform:uppercase;color:var(--muted)}\n"
	".banner{border:2px solid #b45309;background:#fff7ed;color:#7c2d12;border-radius:6px;"
	"padding:.75rem 1rem;margin:0 0 1.25rem}\n"
	".toc{border:1px solid var(--border);border-radius:6px;padding:.75rem 1rem;margin:0 0 1.5rem;"
	"background:var(--surface)}\n"
	".toc h2{font-size:1rem;margin:0 0 .4rem;padding:0;border:0}\n"
	".toc ol{margin:0;padding-left:1.25rem}\n"
	".toc ol ol{margin:.1rem 0 .2rem}\n"
	".toc a{text-decoration:none}\n"
	"figure{margin:1.5rem 0}\n"
	"img{max-width:100%;height:auto}\n"
	"figure.fig img{display:block;margin:0 auto;background:#fff}\n"
	"figcaption{color:var(--muted);font-size:.9rem;margin:.5rem 0}\n"
	".label{font-weight:700;color:var(--text)}\n"
	".table-wrap{max-width:100%;overflow-x:auto;border:1px solid var(--border);border-radius:6px;"
	"margin:0 0 1rem}\n"
	"table{border-collapse:collapse;min-width:100%;font-size:.9rem;"
	"font-variant-numeric:tabular-nums}\n"
	"th,td{padding:.35rem .6rem;border-bottom:1px solid var(--border);text-align:left;"
	"vertical-align:top;overflow-wrap:normal}\n"
	/* Captured tables: one line per value (the wrapper scrolls); long text wraps in a
	 * column of readable width instead of making the table very wide or very tall. */
	"table.data th,table.data td{white-space:nowrap}\n"
	"table.data td.long{white-space:normal;min-width:14rem;max-width:28rem;"
	"overflow-wrap:anywhere}\n"
	"thead th{background:var(--surface);font-weight:700}\n"
	"tbody tr:last-child td{border-bottom:0}\n"
	".num{text-align:right}\n"
	".center{text-align:center}\n"
	".na{color:var(--muted)}\n"
	".dtype{display:block;font-weight:400;font-size:.75rem;color:var(--muted)}\n"
	".note,.see-also{color:var(--muted);font-size:.9rem}\n"
	".url{color:var(--muted);font-size:.92em}\n"
	".missing{color:#b91c1c;border:1px dashed #b91c1c;border-radius:6px;padding:.5rem .75rem}\n"
	".meta dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.35rem 1rem;"
	"margin:0}\n"
	".meta dt{font-weight:700;color:var(--muted)}\n"
	".meta dd{margin:0;min-width:0}\n"
	".meta ul{margin:0;padding-left:1.1rem}\n"
	"footer{border-top:1px solid var(--border);color:var(--muted);font-size:.85rem}\n"
	"footer .wrap{padding-top:1rem;padding-bottom:2rem}\n"
	"@media (max-width:40rem){h1{font-size:1.45rem}.meta dl{grid-template-columns:minmax(0,1fr)}"
	".meta dd{margin-bottom:.5rem}.kind{display:none}}\n"
	"@page{margin:15mm}\n"
	"@media print{body{background:none;color:#000;font-size:11pt}"
	".masthead{background:none;color:#000;border-bottom:2px solid #000}"
	".question,.toc,.banner,pre,code,thead th{background:none}"
	"a{color:inherit;text-decoration:none}"
	"main.wrap,.wrap{max-width:none;padding-left:0;padding-right:0}"
	".table-wrap{overflow:visible;border:0}"
	/* paper cannot scroll: captured tables wrap to the page width in a smaller type */
	"table{font-size:8pt}table.data th,table.data td{white-space:normal;overflow-wrap:anywhere;"
	"padding:.15rem .3rem}table.data td.long{min-width:0}"
	"figure,img,pre,blockquote,tr,.banner,.question{break-inside:avoid;page-break-inside:avoid}"
	"h2,h3,h4,figcaption{break-after:avoid;page-break-after:avoid}}\n";

void rpt_css(struct rpt_ctx *c, const struct rpt_brand *b)
{
	rpt_printf(c,
		   ":root{--brand-primary:%s;--brand-accent:%s;--on-primary:%s;--text:%s;--muted:%s;"
		   "--bg:%s;--surface:%s;--border:%s;\n",
		   b->primary, b->accent, on_color(b->primary), b->text, b->muted, b->background,
		   b->surface, b->border);
	rpt_put(c, "--font:system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",\"DejaVu Sans\","
		   "Arial,sans-serif;\n--mono:ui-monospace,\"SFMono-Regular\",\"DejaVu Sans Mono\","
		   "Menlo,Consolas,monospace}\n");
	rpt_putn(c, CSS, sizeof CSS - 1);
}
