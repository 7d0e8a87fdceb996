//! Which HUD labels to show so that none overlaps another, most important first. With many
//! workers not every label fits; a down or degraded worker's label always wins over a healthy one.

/// A label's box on screen, in CSS pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Rect {
    fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
}

/// For each label (its box, or None when off screen, and its priority: higher shows first),
/// whether it is shown. Equal priorities keep their order.
pub fn visible(labels: &[(Option<Rect>, u8)]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(labels[i].1));
    let mut shown = vec![false; labels.len()];
    let mut placed: Vec<Rect> = Vec::with_capacity(labels.len());
    for i in order {
        if let Some(r) = labels[i].0 {
            if placed.iter().all(|p| !p.overlaps(&r)) {
                placed.push(r);
                shown[i] = true;
            }
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x: f32, y: f32) -> Option<Rect> {
        Some(Rect {
            x,
            y,
            w: 100.0,
            h: 20.0,
        })
    }

    #[test]
    fn apart_labels_all_show() {
        assert_eq!(
            visible(&[(r(0.0, 0.0), 0), (r(0.0, 30.0), 0)]),
            vec![true, true]
        );
    }

    #[test]
    fn on_overlap_the_more_important_label_wins() {
        assert_eq!(
            visible(&[(r(0.0, 0.0), 0), (r(50.0, 10.0), 3)]),
            vec![false, true]
        );
        assert_eq!(
            visible(&[(r(0.0, 0.0), 1), (r(50.0, 10.0), 1)]),
            vec![true, false]
        );
    }

    #[test]
    fn touching_is_not_overlapping_and_off_screen_is_hidden() {
        assert_eq!(
            visible(&[(r(0.0, 0.0), 0), (r(100.0, 0.0), 0), (None, 9)]),
            vec![true, true, false]
        );
    }
}
