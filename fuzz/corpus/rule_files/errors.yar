rule fine { strings: $a = "MZ" condition: $a at 0 }

rule unknown_identifier { condition: nosuchvar == 1 }

rule bad_regex { strings: $r = /abc{/ condition: $r }

rule bad_action { meta: action = "explode" condition: part_kind == "attachment" }
