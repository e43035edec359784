// Industry test signatures: harmless strings every mail filter must catch, so that an
// administrator can prove the filter works end to end.

rule eicar_test_file
{
  meta:
    description = "EICAR anti-malware test file"
    action = "reject"
    score = 100
  strings:
    $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
  condition:
    $eicar in (0..128)
}
