// Office documents that carry code: VBA macros (legacy OLE files and Office Open XML),
// Excel 4.0 macro sheets, remote templates and RTF exploits.
//
// Office Open XML files (.docx/.docm/.xlsm, ...) are ZIP archives, so the walk opens them and
// each part is an archive member with its path as `filename` (`word/vbaProject.bin`). Legacy
// OLE files (.doc/.xls/.ppt) are scanned as they are: their streams are stored in sectors, so
// stream names (UTF-16LE in the directory) and the identifiers VBA keeps uncompressed in the
// `_VBA_PROJECT` stream are visible to plain string matching.
//
// Scoring: a document with macros is a strong signal (6: tags alone) because macro documents
// were the main malspam vector for years and ordinary correspondence rarely needs them; an
// auto-run entry point or download-and-run calls add to it, so a typical dropper reaches
// quarantine. None is conclusive alone: finance departments do mail macro workbooks.

private rule ole_file
{
  condition:
    uint32be(0) == 0xD0CF11E0 and uint32be(4) == 0xA1B11AE1
}

private rule vba_project_member
{
  condition:
    part_kind == "archive_member" and filename matches /(^|\/)vbaProject\.bin$/i
}

private rule ole_with_vba
{
  strings:
    // Stream and storage names in the compound-file directory are UTF-16LE.
    $vba_project = "_VBA_PROJECT" wide
    $dir         = { 64 00 69 00 72 00 00 00 }                        // "dir" stream name
    // The first token group of a compressed module: flag byte, "Attribut", flag byte.
    $attr        = { 00 41 74 74 72 69 62 75 74 00 }
  condition:
    ole_file and ($vba_project or ($dir and $attr))
}

rule ooxml_vba_macros
{
  meta:
    description = "Office Open XML document with a VBA project (vbaProject.bin)"
    score = 6
  condition:
    vba_project_member
}

rule ole_vba_macros
{
  meta:
    description = "Legacy Office (OLE) document with VBA macro streams"
    score = 6
  condition:
    (part_kind == "attachment" or part_kind == "archive_member")
    and not vba_project_member and ole_with_vba
}

rule office_macro_autoexec
{
  meta:
    description = "VBA macros with an entry point that runs when the document is opened or closed"
    // Auto-run is what turns "has macros" into "runs code when opened". Legitimate templates
    // use it too, so it adds to the macro score rather than standing alone.
    score = 4
  strings:
    $a1 = "AutoOpen" nocase
    $a2 = "Auto_Open" nocase
    $a3 = "Document_Open" nocase
    $a4 = "Workbook_Open" nocase
    $a5 = "AutoExec" nocase
    $a6 = "AutoClose" nocase
    $a7 = "Auto_Close" nocase
    $a8 = "Document_Close" nocase
    $a9 = "Workbook_BeforeClose" nocase
    $b1 = "Presentation_Open" nocase
    $b2 = "InkPicture1_Painted" nocase
  condition:
    (vba_project_member or ole_with_vba) and any of them
}

rule office_macro_suspicious_calls
{
  meta:
    description = "VBA macros that start programs, download files or decode hidden strings"
    // Two different markers: one alone (a Shell call, a CreateObject) is ordinary automation.
    score = 5
  strings:
    $s1 = "WScript.Shell" nocase
    $s2 = "Shell.Application" nocase
    $s3 = "powershell" nocase
    $s4 = "URLDownloadToFile" nocase
    $s5 = /(MSXML2|Microsoft)\.(Server)?XMLHTTP/ nocase
    $s6 = "WinHttp.WinHttpRequest" nocase
    $s7 = "ADODB.Stream" nocase
    $s8 = "ShellExecute" nocase
    $s9 = "CallByName" nocase
    $t1 = "cmd.exe" nocase
    $t2 = "mshta" nocase
    $t3 = "regsvr32" nocase
    $t4 = "rundll32" nocase
    $t5 = "certutil" nocase
    $t6 = "StrReverse" nocase
    $t7 = "CreateObject" nocase
    $t8 = "GetObject" nocase
    $t9 = "winmgmts" nocase
  condition:
    (vba_project_member or ole_with_vba) and 2 of them
}

rule ooxml_macro_sheet
{
  meta:
    description = "Excel workbook with an Excel 4.0 (XLM) macro sheet"
    // XLM macros are an old feature revived by malware because it escaped VBA-only checks.
    score = 6
  condition:
    part_kind == "archive_member" and filename matches /^xl\/macrosheets\//i
}

rule ooxml_remote_template
{
  meta:
    description = "Word document that loads its template from a web address (remote template injection)"
    // An attachedTemplate relationship pointing at http(s) fetches code at open time.
    score = 8
  strings:
    $tmpl = "attachedTemplate"
    $ext  = /TargetMode\s*=\s*"External"/
    $http = /Target\s*=\s*"(https?|file):\/\//
  condition:
    part_kind == "archive_member" and filename matches /\.rels$/i and all of them
}

rule rtf_embedded_object_autoupdate
{
  meta:
    description = "RTF document with an embedded OLE object set to update (run) automatically"
    // \objupdate makes Word load the object when the file opens, the trigger used by the
    // Equation Editor and OLE link exploits.
    score = 8
  strings:
    $obj    = "\\objdata" nocase
    $update = "\\objupdate" nocase
    $link   = "\\objautlink" nocase
  condition:
    (part_kind == "attachment" or part_kind == "archive_member")
    and uint32be(0) == 0x7B5C7274 and $obj and ($update or $link)   // "{\rt"
}

rule rtf_equation_editor_object
{
  meta:
    description = "RTF document embedding an Equation Editor 3.0 object (exploited by CVE-2017-11882 and CVE-2018-0802)"
    // The component was removed from Office for its exploits; documents carrying it today are
    // almost always attacks.
    score = 10
  strings:
    $obj  = "\\objdata" nocase
    $eq1  = "Equation.3" nocase
    // "Equation" as hex digits inside \objdata, both cases.
    $eq2  = "4571756174696f6e" nocase
    $clsid = "0002ce02" nocase
  condition:
    (part_kind == "attachment" or part_kind == "archive_member")
    and uint32be(0) == 0x7B5C7274 and $obj and any of ($eq1, $eq2, $clsid)
}
