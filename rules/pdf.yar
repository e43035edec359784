// PDF attachments that act: actions that run when the file opens, and links to the kind of
// host phishing pages live on.
//
// PDFs are scanned as they are (encrypted ones are recorded as `encrypted-pdf`; an
// owner-password-only PDF is readable and scanned). Object dictionaries are usually stored
// uncompressed, so action names and link targets are visible to string matching; inside
// compressed object streams they are not, which these rules accept as a gap.

private rule pdf_file
{
  strings:
    $hdr = "%PDF-"
  condition:
    (part_kind == "attachment" or part_kind == "archive_member") and $hdr in (0..1024)
}

rule pdf_open_action_script
{
  meta:
    description = "PDF runs JavaScript when it is opened (OpenAction or AA with JavaScript)"
    // Documents rarely need script at open time; exploit kits and click-through lures do.
    score = 4
  strings:
    $open = /\/(OpenAction|AA)\b/
    $js   = /\/(JavaScript|JS)\b/
  condition:
    pdf_file and $open and $js
}

rule pdf_launch_action
{
  meta:
    description = "PDF with a Launch action, which asks the viewer to start a program or open a file"
    score = 6
  strings:
    $launch = /\/Launch\b/
    $win    = /\/(Win|F)\s*(<<|\()/
  condition:
    pdf_file and $launch and $win
}

rule pdf_link_to_suspicious_host
{
  meta:
    description = "PDF links to a URL shortener, free web host, cloud bucket or bare IP address"
    // The PDF lure is a picture of a document with one big link; the link goes where
    // phishing kits are hosted. Link targets inside PDFs are not in the `url` target, so
    // this rule looks at the /URI entries itself.
    score = 4
  strings:
    $short = /\/URI\s*\(\s*https?:\/\/(www\.)?(bit\.ly|tinyurl\.com|t\.ly|is\.gd|cutt\.ly|cutt\.us|rb\.gy|shorturl\.at|rebrand\.ly|tiny\.cc|s\.id|clck\.ru|ow\.ly|goo\.gl|t\.co)\// nocase
    $host  = /\/URI\s*\(\s*https?:\/\/[^\/)]{1,80}\.(web\.core\.windows\.net|blob\.core\.windows\.net|web\.app|firebaseapp\.com|pages\.dev|workers\.dev|r2\.dev|netlify\.app|vercel\.app|herokuapp\.com|glitch\.me|000webhostapp\.com|weebly\.com|wixsite\.com|run\.app|appspot\.com|github\.io)[\/)]/ nocase
    $gapps = /\/URI\s*\(\s*https?:\/\/(storage\.googleapis\.com|firebasestorage\.googleapis\.com|script\.google\.com|sites\.google\.com|docs\.google\.com\/(forms|drawings)|forms\.gle|ipfs\.io)\// nocase
    $ip    = /\/URI\s*\(\s*https?:\/\/[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}[:\/)]/ nocase
  condition:
    pdf_file and any of them
}
