// Content that hides what it is: encoded HTML and script that decodes itself.
//
// Legitimate HTML mail is written to be read by mail clients that never run script, so
// script that decodes long encoded strings (base64 through atob, percent-encoding through
// unescape, character codes) only makes sense for content meant to be opened in a browser:
// phishing pages and smuggled payloads in HTML attachments. Each technique alone is scored
// strong-but-not-conclusive (4-6); two together usually reach quarantine.

private rule markup_part
{
  condition:
    part_kind == "html" or part_kind == "attachment" or part_kind == "archive_member"
    or part_kind == "text" or part_kind == "raw"
}

rule html_data_uri_document
{
  meta:
    description = "A whole HTML document embedded as a data: URI (data:text/html;base64)"
    // Navigating to a data:text/html URI shows a page with no web address to check or block.
    score = 6
  strings:
    $d = /data:\s*text\/html\s*;\s*(charset=[a-z0-9-]{1,20}\s*;\s*)?base64\s*,/ nocase
  condition:
    markup_part and $d
}

rule js_atob_long_base64
{
  meta:
    description = "Script decodes a long base64-encoded file or page with atob()"
    // A page that carries its real content (another page, or the file it smuggles) as
    // base64 and decodes it at run time.
    score = 5
  strings:
    $atob = /\batob\s*\(/
    // A quoted base64 run of 300+ characters that begins like the encoding of a file or a
    // page: ZIP/OOXML (UEsDB), PE (TVqQ, TVpQ, TVoA), PDF (JVBERi), <!DOCTYPE, <html,
    // <HTML, <script, <body, <form, <div, <svg, <?xml, 7z, RAR, gzip, OLE, RTF, and a
    // UTF-8 byte order mark. The first characters are what makes this cheap: a quoted run
    // of any base64 has no literal for the pattern search to key on, so every quote in
    // every part scanned (and 1 in 1,400 bytes of any binary attachment) cost a regex
    // verification. Data URIs (data:image/png;base64,...) begin with "data:" after the
    // quote, so inline images do not match.
    $b64  = /["'`](UEsDB|TVqQ|TVpQ|TVoA|JVBERi|PCFET0NUWVBF|PCFkb2N0eXBl|PGh0bW|PEhUTU|PHNjcmlwd|PGJvZH|PGZvcm|PGRpd|PHN2Z|PD94bW|N3q8ryc|UmFyIRoH|H4sI|0M8R4KGx|e1xydG|77u\/)[A-Za-z0-9+\/]{300,}={0,2}["'`]/
  condition:
    markup_part and $atob and $b64
}

rule js_unescape_percent_encoded
{
  meta:
    description = "Script decodes a long percent-encoded string (unescape / decodeURIComponent)"
    score = 5
  strings:
    $call = /\b(unescape|decodeURIComponent|decodeURI)\s*\(/
    $pct  = /(%[0-9A-Fa-f]{2}){60,}/
  condition:
    markup_part and $call and $pct
}

rule js_document_write_decoded
{
  meta:
    description = "Script writes decoded content into the page (document.write of atob/unescape/fromCharCode)"
    // The page's HTML does not exist until the script writes it, so nothing scanning the
    // markup sees the form or the links.
    score = 5
  strings:
    $write = /document\s*\.\s*write(ln)?\s*\(/
    $dec1  = /\batob\s*\(/
    $dec2  = /\bunescape\s*\(/
    $dec3  = /\bdecodeURIComponent\s*\(/
    $dec4  = /String\s*\.\s*fromCharCode\s*\(/
  condition:
    markup_part and $write and any of ($dec*)
}

rule js_charcode_array
{
  meta:
    description = "Script builds text from a long list of character codes (String.fromCharCode)"
    score = 4
  strings:
    $cc = /String\s*\.\s*fromCharCode\s*\(\s*\d{2,3}\s*(,\s*\d{2,3}\s*){24,}/
    $cc2 = /fromCharCode\s*\(\s*[A-Za-z_$][\w$]*\s*(\[\s*\w+\s*\])?\s*[-+^]\s*\d+/
  condition:
    markup_part and any of them
}

rule js_eval_decoded
{
  meta:
    description = "Script evaluates decoded text (eval/Function of atob, unescape or fromCharCode)"
    score = 5
  strings:
    $eval = /\b(eval|new\s+Function|setTimeout)\s*\(\s*(atob|unescape|decodeURIComponent|String\.fromCharCode|window\s*\[\s*["']atob)\s*\(/
  condition:
    markup_part and $eval
}

rule html_entity_encoded_text
{
  meta:
    description = "Long runs of numeric character references spelling plain ASCII (text hidden from filters)"
    // Writing ordinary letters as &#NN; hides words from scanners that do not decode
    // entities. Only printable ASCII counts: non-ASCII letters written as entities
    // (&#252; for u-umlaut) are normal.
    score = 3
  strings:
    $ent = /(&#0?(3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6]);){20,}/
    $hex = /(&#x0?[2-7][0-9a-f];){20,}/ nocase
  condition:
    (part_kind == "html" or part_kind == "attachment") and any of them
}
