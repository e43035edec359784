// HTML that attacks the reader: smuggled downloads, credential forms in HTML attachments,
// attachments that only forward the reader to a web page.
//
// A text/html body part is scanned as `part_kind == "html"`; an HTML *attachment* (a part
// with a file name) is scanned twice, as `html` and as `attachment` with its `filename`,
// `extension` and `content_type`, so rules about attachments check `part_kind ==
// "attachment"`. Mail clients never run script in a message body, so script matters most
// in attachments, which open in a browser.

private rule html_attachment
{
  condition:
    (part_kind == "attachment" or part_kind == "archive_member")
    and (extension == "htm" or extension == "html" or extension == "shtml" or extension == "xhtml"
         or extension == "mht" or extension == "mhtml" or extension == "svg" or extension == "hta"
         or content_type == "text/html" or content_type == "image/svg+xml")
}

rule html_smuggling
{
  meta:
    description = "HTML builds a file in script and saves it (Blob + msSaveOrOpenBlob or createObjectURL + download)"
    // HTML smuggling assembles the payload inside the browser, past every gateway, and hands
    // it to the user as a download. Web pages do this, mail never needs to: quarantine.
    score = 10
    action = "quarantine"
  strings:
    $blob      = /new\s+Blob\s*\(/
    $save      = "msSaveOrOpenBlob"
    $save2     = "msSaveBlob"
    $objurl    = /URL\s*\.\s*createObjectURL\s*\(/
    $download  = /\.download\s*=|\.setAttribute\s*\(\s*["']download["']|<a\s[^>]{0,200}\bdownload\s*=/ nocase
    $decode1   = /\batob\s*\(/
    $decode2   = /new\s+Uint8Array\s*\(/
    $decode3   = /\.charCodeAt\s*\(/
    $click     = /\.click\s*\(\s*\)/
  condition:
    (part_kind == "html" or part_kind == "attachment" or part_kind == "archive_member")
    and $blob and ($save or $save2 or ($objurl and ($download or $click)))
    and any of ($decode*)
}

rule html_attachment_password_form
{
  meta:
    description = "HTML attachment with a password field: a log-in page opened from disk"
    // A local HTML file asking for a password is the classic credential-phishing attachment;
    // real log-in pages live on the service's own site.
    score = 10
  strings:
    $pw = /<input[^>]{0,200}type\s*=\s*["']?password/ nocase
  condition:
    html_attachment and $pw
}

rule html_attachment_posts_credentials
{
  meta:
    description = "HTML attachment that sends form data to a web address (form action or script request)"
    // An attachment that submits what the reader types somewhere else. Weaker than a password
    // field (surveys and order forms exist), stronger together.
    score = 4
  strings:
    $form   = /<form[^>]{0,300}action\s*=\s*["']?(https?:)?\/\// nocase
    $ajax1  = /\$\.(ajax|post)\s*\(/
    $ajax2  = /XMLHttpRequest\s*\(/
    $ajax3  = /\bfetch\s*\(\s*["'`]https?:/
    $email  = /<input[^>]{0,200}(type\s*=\s*["']?email|name\s*=\s*["']?(email|login|user(name)?|e-mail))/ nocase
    $tg     = "api.telegram.org" nocase
  condition:
    html_attachment and ($tg or (($form or any of ($ajax*)) and $email))
}

rule html_attachment_redirect
{
  meta:
    description = "HTML attachment that sends the browser to another page (script location or meta refresh)"
    // A one-screen HTML file whose only job is to open a web page moves the phishing link out
    // of the message body, past URL filters.
    score = 6
  strings:
    $loc1 = /(window|document|top|self)\.location(\.href)?\s*=/ nocase
    $loc2 = /location\.(replace|assign)\s*\(/ nocase
    $meta = /<meta[^>]{0,100}http-equiv\s*=\s*["']?refresh[^>]{0,100}url\s*=/ nocase
  condition:
    html_attachment and filesize < 200KB and any of them
}

rule svg_attachment_script
{
  meta:
    description = "SVG image attachment containing script"
    // Browsers run script inside SVG opened from disk; a picture has no need for it.
    score = 8
  strings:
    $svg    = "<svg" nocase
    $script = /<script[\s>]/ nocase
    $on     = /\son(load|click|mouseover)\s*=/ nocase
  condition:
    (part_kind == "attachment" or part_kind == "archive_member")
    and (extension == "svg" or content_type == "image/svg+xml")
    and $svg and ($script or $on)
}

rule html_body_password_field
{
  meta:
    description = "Message body is an HTML form with a password field"
    // A log-in form inside the mail itself; legitimate services send a link, never a form.
    score = 5
  strings:
    $pw = /<input[^>]{0,200}type\s*=\s*["']?password/ nocase
  condition:
    part_kind == "html" and $pw
}
