// Dangerous attachments recognised by their content, whatever they are called.
//
// A file name is the sender's claim; the bytes are what the recipient's system will run.
// These rules look at attachments (`part_kind == "attachment"`) and at members of archives
// the walk opened (`part_kind == "archive_member"`, `in_archive`). Names are scored
// separately in attachments.yaml, so a renamed executable still hits here and a correctly
// named one hits both.
//
// Scoring: ordinary mail almost never carries programs, scripts, shortcuts or disk images,
// and these are how malware reaches a desktop, so each is a strong signal on its own
// (8-10: tag or quarantine alone). None uses `action`: a program in mail is suspicious, not
// proof of malware, and an administrator who mails tools around can lower the score.

private rule in_file_part
{
  condition:
    part_kind == "attachment" or part_kind == "archive_member"
}

private rule pe_file
{
  condition:
    filesize > 64 and uint16(0) == 0x5A4D
    and uint32(0x3C) < filesize - 4
    and uint32(uint32(0x3C)) == 0x00004550
}

private rule elf_file
{
  condition:
    filesize > 52 and uint32(0) == 0x464C457F
}

private rule macho_file
{
  condition:
    filesize > 28 and (
      uint32(0) == 0xFEEDFACE or uint32(0) == 0xFEEDFACF or
      uint32(0) == 0xCEFAEDFE or uint32(0) == 0xCFFAEDFE or
      // Universal ("fat") binary, big-endian magic; the small architecture count keeps
      // Java class files (same magic, large version numbers) out.
      (uint32be(0) == 0xCAFEBABE and uint32be(4) > 0 and uint32be(4) < 8)
    )
}

rule executable_attachment
{
  meta:
    description = "Attachment is a Windows, Linux or macOS executable (PE, ELF or Mach-O)"
    // A program mailed as an attachment is the oldest malware delivery there is; legitimate
    // software is downloaded, not mailed. Quarantine-level on its own.
    score = 10
  condition:
    part_kind == "attachment" and (pe_file or elf_file or macho_file)
}

rule executable_in_archive
{
  meta:
    description = "Archive member is a Windows, Linux or macOS executable (PE, ELF or Mach-O)"
    // Zipping the program is the usual way around attachment-type filters.
    score = 10
  condition:
    part_kind == "archive_member" and in_archive and (pe_file or elf_file or macho_file)
}

rule windows_script_content
{
  meta:
    description = "Attachment holds a Windows Script Host script (JScript/VBScript driving COM objects)"
    // WScript/ActiveX automation is what .js/.vbs/.wsf droppers do: fetch a payload, write it,
    // run it. Two distinct markers are required so a single word in a document does not hit.
    score = 10
  strings:
    $activex  = "ActiveXObject" nocase
    $wscript  = "WScript.Shell" nocase
    $wscript2 = "WScript.CreateObject" nocase
    $fso      = "Scripting.FileSystemObject" nocase
    $xmlhttp  = /(MSXML2|Microsoft)\.(Server)?XMLHTTP/ nocase
    $winhttp  = "WinHttp.WinHttpRequest" nocase
    $stream   = "ADODB.Stream" nocase
    $shellapp = "Shell.Application" nocase
    $run      = /\.(Run|ShellExecute|Exec)\s*\(/ nocase
    $create   = /CreateObject\s*\(/ nocase
    $env      = /(ExpandEnvironmentStrings|%TEMP%|%APPDATA%)/ nocase
  condition:
    in_file_part and not pe_file and 2 of them
}

rule hta_content
{
  meta:
    description = "Attachment is an HTML Application (HTA): HTML that runs with full user rights"
    // mshta runs these outside the browser sandbox; there is no benign reason to mail one.
    score = 10
  strings:
    $hta   = /<hta:application/ nocase
    $vbs   = /<script[^>]{0,60}language\s*=\s*["']?vbscript/ nocase
    $wsh   = "WScript.Shell" nocase
    $axo   = "ActiveXObject" nocase
  condition:
    in_file_part and ($hta or ($vbs and ($wsh or $axo)))
}

rule powershell_downloader_content
{
  meta:
    description = "Attachment holds a PowerShell command that decodes or downloads and runs code"
    // Encoded or download-and-execute PowerShell inside a mailed file (script, shortcut,
    // batch file) is a dropper; a single marker is not enough, administrators mail scripts.
    score = 8
  strings:
    $ps   = "powershell" nocase wide ascii
    $enc  = /\s-(e|ec|enc|enco|encodedcommand)\s+[A-Za-z0-9+\/=]{20,}/ nocase wide ascii
    $iex  = /\b(iex|Invoke-Expression)\b/ nocase wide ascii
    $dl   = /(DownloadString|DownloadFile|Invoke-WebRequest|iwr |Start-BitsTransfer|Net\.WebClient)/ nocase wide ascii
    $b64  = "FromBase64String" nocase wide ascii
    $hid  = /-w(indowstyle)?\s+h(idden)?\b/ nocase wide ascii
  condition:
    in_file_part and $ps and 2 of ($enc, $iex, $dl, $b64, $hid)
}

rule windows_shortcut_content
{
  meta:
    description = "Attachment is a Windows shortcut (.lnk), which can run any command line"
    // Shortcuts point at powershell/cmd/mshta with arguments; mailing one has no ordinary use.
    score = 10
  condition:
    in_file_part and filesize > 76
    and uint32(0) == 0x0000004C
    and uint32(4) == 0x00021401 and uint32(8) == 0x00000000
    and uint32(12) == 0x000000C0 and uint32(16) == 0x46000000
}

rule disk_image_content
{
  meta:
    description = "Attachment is a disk image (ISO 9660, UDF, VHD/VHDX) that Windows mounts with a double click"
    // Files inside a mounted image lose the mark-of-the-web, which is why malware moved into
    // ISO/IMG/VHD containers. Rare in ordinary mail; strong but not conclusive alone, the
    // name rule adds to it.
    score = 8
  strings:
    $cd001 = "CD001"
    $bea   = "BEA01"
    $nsr   = /NSR0[23]/
    $vhd   = "conectix"
    $vhdx  = "vhdxfile"
  condition:
    in_file_part and (
      $cd001 at 0x8001 or $cd001 at 0x8801 or $cd001 at 0x9001
      or $bea at 0x8001 or $nsr at 0x8801 or $nsr at 0x9001
      or $vhdx at 0 or $vhd at 0 or $vhd at filesize - 512
    )
}

rule onenote_attachment
{
  meta:
    description = "Attachment is a OneNote section (.one), a container that can carry clickable embedded files"
    // OneNote files were used to smuggle scripts behind a fake "double click to view" button.
    // Notebooks are rarely mailed; a weak-to-strong signal that the embedded-file rule raises.
    score = 5
  condition:
    in_file_part
    and uint32be(0) == 0xE4525C7B and uint32be(4) == 0x8CD8A74D
    and uint32be(8) == 0xAEB15378 and uint32be(12) == 0xD02996D3
}

rule onenote_embedded_payload
{
  meta:
    description = "OneNote section with an embedded file that is a program or script"
    // The FileDataStoreObject GUID marks an embedded file; a program or script next to it is
    // the 2023 OneNote dropper pattern.
    score = 10
  strings:
    $filedata = { E7 16 E3 BD 65 26 11 45 A4 C4 8D 4D 0B 7A 9E AC }
    $mz       = "This program cannot be run in DOS mode"
    $hta      = "<hta:application" nocase
    $wsh      = "WScript.Shell" nocase
    $ps       = "powershell" nocase
    $bat      = /@echo off/ nocase
    $vbs      = /CreateObject\s*\(/ nocase
  condition:
    onenote_attachment and $filedata and any of ($mz, $hta, $wsh, $ps, $bat, $vbs)
}

rule compiled_help_content
{
  meta:
    description = "Attachment is a compiled HTML help file (.chm), which can run script"
    // CHM files execute embedded script through hh.exe; a long-standing malware wrapper.
    score = 8
  condition:
    in_file_part and uint32be(0) == 0x49545346 and uint32(4) == 3   // "ITSF", version 3
}
