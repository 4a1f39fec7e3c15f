//! Word lists that ship inside the crate for the contextual PII detectors: common first names
//! and surnames (NAME), first names that are also ordinary words (need a known surname), and
//! capitalised words that are never a name (sentence starters, months, days, places in
//! titles). Lists are lower-case; lookups fold ASCII case. Built once, on first use.

use std::collections::HashSet;
use std::sync::LazyLock;

const FIRST_NAMES: &str = "aaliyah aaron abdul abigail abraham adam adele adrian ahmed aisha alan albert alejandro alex alexander alexandra alexis alfred ali alice alicia alison allison amanda amber amelia amir amit amy ana andrea andrew angela anil anita ann anna anne anthony antonio arjun arthur ashley aurora austin ava barbara beatriz ben benjamin bernard beth betty beverly bill billie bob bonnie brandon brenda brian bridget brittany bruce bryan caleb camila carl carla carlos carmen carol caroline carolyn catherine charles charlie charlotte chen chloe chris christian christina christine christopher cindy claire clara claudia colin connor craig cynthia daniel daniela danielle david deborah debra denise dennis derek diana diane diego dmitri dolores donald donna doris dorothy douglas dylan edward elena elijah elizabeth ella ellen emily emma eric erica erin ethan eugene eva evelyn fatima felipe fernando fiona frances francesca francisco frank gabriel gabriela gary george gerald giovanni gloria grace gregory hannah harold harry hassan heather helen henry hiroshi holly howard hugo ian irene isaac isabel isabella ivan jack jacob jacqueline james jamie jane janet janice jason javier jean jeff jeffrey jennifer jeremy jerry jesse jessica jesus joan joanna joe john johnny jonathan jordan jorge jose joseph joshua joyce juan judith judy julia julian julie justin karen karl kate katherine kathleen kathryn kayla keith kelly kenji kenneth kevin kim kimberly kyle larry laura lauren lawrence leah leo leonardo liam lily linda lisa logan lori louis lucas lucia luis luke madison manuel marco margaret maria marie marilyn mario marion marta martha martin mary mason matthew megan melissa mia michael michelle miguel mohammed muhammad nancy natalie nathan nicholas nicole noah oliver olivia oscar pablo pamela patricia patrick paul paula peter philip pierre priya rachel rahul raj ralph ramon raymond rebecca richard rita robert roberto roger ronald rosa ruby russell ruth ryan samantha samuel sandra sara sarah scott sean sergei sharon shirley sofia sophia sophie stephanie stephen steven susan takeshi tammy teresa theresa thomas timothy tina todd tom tony tyler valentina vanessa victor victoria vincent virginia walter wayne wei william xavier yuki yusuf zachary zoe";

/// First names that are also common words: a name only before a known surname.
const AMBIGUOUS_FIRST_NAMES: &str = "april art august bill bob carol chase dawn faith frank grace hope iris ivy jack jade jean jewel joy june mark may max olive pat penny rose ruby summer will";

const SURNAMES: &str = "adams ahmed ali allen alvarez anderson bailey baker banerjee barnes bell bennett brooks brown bryant butler campbell carter castillo chan chavez chen clark cohen collins cook cooper cox cruz davies davis diaz dubois edwards evans fernandez fischer fisher flores foster garcia gomez gonzalez gray green gupta hall harris hernandez hill hoffmann howard hughes ivanov ivanova jackson james jenkins jimenez johnson jones kelly kennedy khan kim king kowalski kumar lee lewis li lin liu lopez martin martinez meyer miller mitchell moore morales morgan morris murphy murray myers nakamura nelson nguyen obrien o'brien ortiz parker patel perez perry peterson phillips powell price ramirez reed reyes richardson rivera roberts robinson rodriguez rossi rogers ross russell sanchez sanders schmidt schneider scott shah silva singh smith stewart sullivan suzuki tanaka taylor thomas thompson torres turner walker wang ward watson weber white williams wilson wood wright wu yamamoto yang young zhang zhao";

/// Capitalised words that start sentences or name things that are not people.
const COMMON_CAPITALISED: &str = "a about after all also an and any are as at be because before but by can could customer dear did do does during each for from get had has have he her here hi his how i if in inc into is it its just let like ltd may me monday tuesday wednesday thursday friday saturday sunday january february march june july september october november december more most my new next no not of on one only or our out over please re she should since so some street than thank thanks that the their then there these they this those to today tomorrow under up us very was we were what when where which while who why will with would yes yesterday you your team support sir madam manager admin user client service north south east west upper lower new york london paris city county state university bank hospital company corp group avenue road lane drive";

fn set(list: &'static str) -> HashSet<&'static str> {
    list.split_ascii_whitespace().collect()
}

static FIRST: LazyLock<HashSet<&'static str>> = LazyLock::new(|| set(FIRST_NAMES));
static AMBIGUOUS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| set(AMBIGUOUS_FIRST_NAMES));
static SURNAME: LazyLock<HashSet<&'static str>> = LazyLock::new(|| set(SURNAMES));
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| set(COMMON_CAPITALISED));

fn lookup(s: &HashSet<&'static str>, word: &str) -> bool {
    if word.len() > 32 {
        return false;
    }
    let lower = word.trim_end_matches('.').to_ascii_lowercase();
    s.contains(lower.as_str())
}

pub(crate) fn is_first_name(word: &str) -> bool {
    lookup(&FIRST, word) || lookup(&AMBIGUOUS, word)
}

pub(crate) fn is_ambiguous_first_name(word: &str) -> bool {
    lookup(&AMBIGUOUS, word)
}

pub(crate) fn is_surname(word: &str) -> bool {
    lookup(&SURNAME, word)
}

pub(crate) fn is_common_capitalised(word: &str) -> bool {
    lookup(&COMMON, word)
}

/// The shipped lists, for the corpus generator and tests.
pub fn first_names() -> impl Iterator<Item = &'static str> {
    FIRST_NAMES.split_ascii_whitespace()
}

pub fn surnames() -> impl Iterator<Item = &'static str> {
    SURNAMES.split_ascii_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_fold_case() {
        assert!(is_first_name("Maria"));
        assert!(is_surname("NGUYEN"));
        assert!(is_ambiguous_first_name("Will"));
        assert!(is_common_capitalised("The"));
        assert!(!is_first_name("Table"));
    }
}
